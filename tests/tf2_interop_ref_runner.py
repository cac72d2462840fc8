"""Runs TF2 calls on TF1 Hub modules with the ORIGINAL tensorflow_hub 0.16.1.

Executed by tests/tf2_interop_test.py with the interpreter of
.venv/ref_modern (TF 2.21 + tensorflow_hub 0.16.1; never hub_tf1), once for
all fixtures:

    python tf2_interop_ref_runner.py REQUEST.json  ->  JSON on stdout

Rules: inputs are decoded and outputs encoded by the fixtures'
check_fixtures.py (REQUEST["fixtures_dir"]), as the test does in-process, so
both sides see identical values.  Nothing here asserts: every item reports
what happened (an output, or the exception's type and message) and the test
decides.

REQUEST: {"fixtures_dir": dir, "items": [item, ...]}; an item has "id",
"op", "module", "tags" and, by op:
  "call"       "signature", "inputs" {key: encoded value}, "as_dict":
               hub.load(module, tags).signatures[signature](**inputs).
  "composite"  as "call", with SparseTensor/RaggedTensor inputs; also
               reports the signature's keyword names.
  "keras3"     keras.Sequential([hub.KerasLayer(module, tags)]) in Keras 3.
  "trainable"  hub.KerasLayer(module, trainable=True, tags), then a call
               with "inputs" under a GradientTape.
  "losses"     the regularization losses hub.load and hub.KerasLayer expose.
"""

import json
import os
import sys
import traceback

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub


class _Env(object):
  np = np
  tf = tf


def _error(e: BaseException) -> dict:
  return {"error": {"type": type(e).__name__, "message": str(e)[:2000],
                    "traceback": traceback.format_exc()[-3000:]}}


def _numpy(value):
  if isinstance(value, dict):
    return {k: _numpy(v) for k, v in value.items()}
  return value.numpy()


class _Runner(object):
  """Caches hub.load results per (module, tags) across items."""

  def __init__(self, check_fixtures):
    self._cf = check_fixtures
    self._loaded = {}

  def _load(self, item):
    key = (item["module"], tuple(sorted(item.get("tags") or ())))
    if key not in self._loaded:
      self._loaded[key] = hub.load(item["module"],
                                   tags=set(item.get("tags") or ()))
    return self._loaded[key]

  def _inputs(self, item) -> dict:
    return {k: self._cf.make_input(_Env(), enc, "constant", k)[0]
            for k, enc in (item.get("inputs") or {}).items()}

  def call(self, item) -> dict:
    function = self._load(item).signatures[item["signature"]]
    out = function(**self._inputs(item))
    if not item.get("as_dict"):
      out = out["default"]
    return {"output": self._cf._encode_output(_Env(), _numpy(out))}  # pylint: disable=protected-access

  def composite(self, item) -> dict:
    function = self._load(item).signatures[item["signature"]]
    names = sorted(function.structured_input_signature[1])
    try:
      function(**self._inputs(item))
      result = {"error": None}
    except Exception as e:  # pylint: disable=broad-except
      result = _error(e)
    result["keyword_names"] = names
    return result

  def keras3(self, item) -> dict:
    import keras  # pylint: disable=g-import-not-at-top
    layer = hub.KerasLayer(item["module"], tags=set(item.get("tags") or ()))
    result = {"keras_version": keras.__version__,
              "layer_base_module": type(layer).__mro__[1].__module__,
              "is_keras3_layer": isinstance(layer, keras.layers.Layer)}
    try:
      keras.Sequential([layer])
      result["error"] = None
    except Exception as e:  # pylint: disable=broad-except
      result.update(_error(e))
    return result

  def trainable(self, item) -> dict:
    try:
      layer = hub.KerasLayer(item["module"], trainable=True,
                             tags=set(item.get("tags") or ()))
    except Exception as e:  # pylint: disable=broad-except
      return dict(_error(e), stage="construct")
    inputs = self._inputs(item)
    if len(inputs) == 1:
      inputs = next(iter(inputs.values()))
    try:
      with tf.GradientTape():
        layer(inputs, training=True)
    except Exception as e:  # pylint: disable=broad-except
      return dict(_error(e), stage="call")
    return {"error": None, "stage": None}

  def losses(self, item) -> dict:
    loaded = self._load(item)
    layer = hub.KerasLayer(item["module"], tags=set(item.get("tags") or ()))
    return {"has_attribute": hasattr(loaded, "regularization_losses"),
            "load_losses": len(getattr(loaded, "regularization_losses",
                                       None) or ()),
            "layer_losses": len(layer.losses)}


def main(path: str) -> None:
  with open(path) as f:
    request = json.load(f)
  sys.path.insert(0, request["fixtures_dir"])
  import check_fixtures  # pylint: disable=g-import-not-at-top
  runner = _Runner(check_fixtures)
  results = {}
  for item in request["items"]:
    try:
      results[item["id"]] = getattr(runner, item["op"])(item)
    except Exception as e:  # pylint: disable=broad-except
      results[item["id"]] = _error(e)
  json.dump({"tensorflow_hub": hub.__version__, "tensorflow": tf.__version__,
             "results": results}, sys.stdout)


if __name__ == "__main__":
  main(sys.argv[1])
