"""Runs calls on a module with the ORIGINAL tensorflow_hub 0.15.

Executed by tests/interop_test.py with the interpreter of .venv/ref, which
has tensorflow_hub 0.15.0 (never hub_tf1):

    python interop_ref_runner.py REQUEST.json  ->  JSON results on stdout

REQUEST: {"module": dir, "calls": [{"tags", "signature", "inputs"}],
          "message_key": optional attachment key, "reexport": optional dir}.
Input values: {"kind": "dense"|"sparse"|"ragged", ...} as built by the test.
"""

import json
import sys

import tensorflow as tf
import tensorflow_hub as hub

import interop_values  # Beside this file.


def main(path):
  with open(path) as f:
    request = json.load(f)
  results = []
  for call in request["calls"]:
    with tf.Graph().as_default():
      module = hub.Module(request["module"], tags=set(call["tags"]) or None)
      inputs = {k: interop_values.to_tensor(v)
                for k, v in call["inputs"].items()}
      out = module(inputs, signature=call["signature"], as_dict=True)
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        results.append(interop_values.to_plain(session.run(out)))
        if request.get("reexport") and not call["tags"]:
          module.export(request["reexport"], session)
          request["reexport"] = None
  spec = hub.load_module_spec(request["module"])
  message = None
  if request.get("message_key"):
    message = spec.get_attached_message(
        request["message_key"], tf.train.BytesList).value[0].decode()
  json.dump({"results": results, "message": message,
             "tags": sorted(sorted(t) for t in spec.get_tags())}, sys.stdout)


if __name__ == "__main__":
  main(sys.argv[1])
