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

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub


def _value(enc):
  if enc["kind"] == "dense":
    return tf.constant(np.array(enc["values"], dtype=enc["dtype"]))
  if enc["kind"] == "sparse":
    return tf.SparseTensor(
        tf.constant(enc["indices"], tf.int64),
        tf.constant(np.array(enc["values"], dtype=enc["dtype"])),
        tf.constant(enc["dense_shape"], tf.int64))
  return tf.RaggedTensor.from_row_splits(
      tf.constant(np.array(enc["values"], dtype=enc["dtype"])),
      tf.constant(enc["row_splits"], tf.int64))


def _plain(x):
  if isinstance(x, dict):
    return {k: _plain(v) for k, v in sorted(x.items())}
  if isinstance(x, tf.compat.v1.ragged.RaggedTensorValue):
    return {"values": _plain(x.values), "row_splits": x.row_splits.tolist()}
  if isinstance(x, tf.compat.v1.SparseTensorValue):
    return {"indices": x.indices.tolist(), "values": _plain(x.values),
            "dense_shape": x.dense_shape.tolist()}
  arr = np.asarray(x)
  if arr.dtype.kind in ("S", "O"):
    return [v.decode() if isinstance(v, bytes) else v for v in arr.ravel()]
  return arr.astype(np.float64).tolist()


def main(path):
  with open(path) as f:
    request = json.load(f)
  results = []
  for call in request["calls"]:
    with tf.Graph().as_default():
      module = hub.Module(request["module"], tags=set(call["tags"]) or None)
      inputs = {k: _value(v) for k, v in call["inputs"].items()}
      out = module(inputs, signature=call["signature"], as_dict=True)
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        results.append(_plain(session.run(out)))
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
