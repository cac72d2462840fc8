"""hub_tf1's TF2 side against the original tensorflow_hub 0.16.1 on TF 2.21.

Rules: the original runs once, in a subprocess with the interpreter of
.venv/ref_modern (TF 2.21 + tensorflow_hub 0.16.1, made by
`tools/bootstrap.sh ref_modern`), over every fixture at once
(tests/tf2_interop_ref_runner.py prints JSON); hub_tf1 runs here.  Inputs are
built and outputs encoded and compared by the fixtures' check_fixtures.py
with each fixture's tolerances.

* Dense-input signature calls: `hub.load(path).signatures[sig](**inputs)` of
  the original and of hub_tf1 give the same outputs.
* What the original cannot do is asserted on both sides, so that this file
  fails when either one changes: SparseTensor/RaggedTensor inputs (the
  original takes only their flattened components), hub.KerasLayer in a
  Keras 3 model (the original's is a tf_keras layer), trainable=True on a
  TF1 module, regularization losses.

Skipped, with the reason, when TensorFlow is older than 2.16 (.venv/legacy,
which Bazel runs every test file with) or .venv/ref_modern is missing.
"""

import json
import os
import subprocess
import tempfile
import unittest

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1
from tests import tf2_fixtures_lib

_HERE = os.path.dirname(os.path.realpath(__file__))
_REF_PYTHON = os.path.join(os.path.dirname(_HERE), ".venv", "ref_modern",
                           "bin", "python")
_RUNNER = os.path.join(_HERE, "tf2_interop_ref_runner.py")
# Fixtures whose first "default" call reads no trainable variable (relu;
# a cond over the input only).
_NO_VARIABLE_PATH = {"control_flow_v1", "control_flow_v2"}
# The fixture whose {"train"} graph has kernel regularizers.
_REGULARIZED = "train_eval_bn_dropout"


def _skip_reason():
  """Why this file cannot run here, or None."""
  major, minor = (int(p) for p in tf.__version__.split(".")[:2])
  if (major, minor) < (2, 16):
    return ("needs TF >= 2.16 (Keras 3, tensorflow_hub 0.16.1); this is TF %s"
            " (.venv/legacy: run it with .venv/modern)" % tf.__version__)
  if not os.path.exists(_REF_PYTHON):
    return ("no tensorflow_hub 0.16.1 reference venv at %s (made by "
            "tools/bootstrap.sh ref_modern)" % _REF_PYTHON)
  return None


def _module_dir(name: str) -> str:
  return os.path.join(tf2_fixtures_lib.MODULES,
                      tf2_fixtures_lib.read_fixture(name)["module_dir"])


def _encoded_inputs(name: str, call: dict, tags) -> dict:
  """A fixture call's inputs as {signature keyword: encoded value}."""
  inputs = call.get("inputs") or {}
  if "dict" in inputs:
    return dict(inputs["dict"])
  if "single" in inputs:
    spec = hub_tf1.load_module_spec(_module_dir(name))
    infos = spec.get_input_info_dict(call.get("signature") or "default",
                                     tags)
    return {next(iter(infos)): inputs["single"]}
  return {}


def _fixture_calls():
  """(name, item) for every apply call of the fixtures hub_tf1.load runs."""
  calls = []
  for name in tf2_fixtures_lib.fixtures_with("apply"):
    fixture = tf2_fixtures_lib.read_fixture(name)
    for check in fixture["checks"]:
      if check["type"] != "apply":
        continue
      tags = sorted(check.get("tags") or ())
      for i, (call, expected) in enumerate(zip(check["calls"],
                                               check["expected"])):
        inputs = _encoded_inputs(name, call, set(tags) or None)
        dense = all(e["kind"] == "dense" for e in inputs.values())
        calls.append((name, {
            "id": "%s/%s/call%d" % (name, check["id"], i),
            "op": "call" if dense else "composite",
            "module": _module_dir(name), "tags": tags,
            "signature": call.get("signature") or "default",
            "as_dict": bool(call.get("as_dict")), "inputs": inputs,
            "expected": expected["output"]}))
  return calls


def _decode(inputs: dict) -> dict:
  env = tf2_fixtures_lib._Env()  # pylint: disable=protected-access
  return {k: tf2_fixtures_lib.check_fixtures.make_input(env, e, "constant",
                                                        k)[0]
          for k, e in inputs.items()}


def _encode(out):
  return tf2_fixtures_lib.check_fixtures._encode_output(  # pylint: disable=protected-access
      tf2_fixtures_lib._Env(), tf2_fixtures_lib._numpy(out))  # pylint: disable=protected-access


def _tolerances(name: str):
  fixture = tf2_fixtures_lib.read_fixture(name)
  return fixture.get("rtol", 1e-5), fixture.get("atol", 1e-5)


def _first_calls(calls):
  """Per fixture: its first dense call of "default" (else its first call)."""
  first = {}
  for name, item in calls:
    best = first.get(name)
    good = item["op"] == "call" and item["signature"] == "default"
    if best is None or (good and not (best["op"] == "call" and
                                      best["signature"] == "default")):
      first[name] = item
  return first


class Tf2InteropTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    reason = _skip_reason()
    if reason:
      raise unittest.SkipTest(reason)
    cls.calls = _fixture_calls()
    cls.first = _first_calls(cls.calls)
    items = [dict(item) for _, item in cls.calls]
    for name, item in sorted(cls.first.items()):
      base = {"module": item["module"], "tags": item["tags"]}
      items.append(dict(base, id=name + "/keras3", op="keras3"))
      items.append(dict(base, id=name + "/trainable", op="trainable",
                        inputs=item["inputs"]))
    items.append({"id": _REGULARIZED + "/losses", "op": "losses",
                  "module": _module_dir(_REGULARIZED), "tags": ["train"]})
    for item in items:
      item.pop("expected", None)
    with tempfile.TemporaryDirectory() as tmp:
      request = os.path.join(tmp, "request.json")
      with open(request, "w") as f:
        json.dump({"fixtures_dir": tf2_fixtures_lib.FIXTURES,
                   "items": items}, f)
      env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
      env["TF_CPP_MIN_LOG_LEVEL"] = "2"
      proc = subprocess.run([_REF_PYTHON, _RUNNER, request], env=env,
                            capture_output=True, text=True, timeout=600,
                            check=False)
    if proc.returncode != 0:
      raise AssertionError("reference runner failed (exit %d):\n%s" % (
          proc.returncode, proc.stderr[-4000:]))
    cls.ref = json.loads(proc.stdout)
    cls.loaded = {}

  def _load(self, module, tags):
    key = (module, tuple(tags))
    if key not in self.loaded:
      self.loaded[key] = hub_tf1.load(module, tags=set(tags) or None)
    return self.loaded[key]

  def _ref(self, item_id):
    self.assertIn(item_id, self.ref["results"])
    return self.ref["results"][item_id]

  def test_reference_is_0_16_1(self):
    self.assertEqual(self.ref["tensorflow_hub"], "0.16.1")
    self.assertEqual(self.ref["tensorflow"], tf.__version__)

  def test_dense_calls_match_original(self):
    dense = [(n, i) for n, i in self.calls if i["op"] == "call"]
    self.assertNotEmpty(dense)
    for name, item in dense:
      with self.subTest(item["id"]):
        ref = self._ref(item["id"])
        self.assertNotIn("error", ref, ref.get("error"))
        module = self._load(item["module"], item["tags"])
        out = module.signatures[item["signature"]](**_decode(item["inputs"]))
        if not item["as_dict"]:
          out = out["default"]
        rtol, atol = _tolerances(name)
        self.assertEqual(tf2_fixtures_lib.check_fixtures.compare(
            ref["output"], _encode(out), rtol, atol, path=item["id"]), [])

  def test_composite_inputs_only_in_hub_tf1(self):
    composite = [(n, i) for n, i in self.calls if i["op"] == "composite"]
    self.assertNotEmpty(composite)
    for name, item in composite:
      with self.subTest(item["id"]):
        ref = self._ref(item["id"])
        # The original: keyword arguments are the flattened components.
        self.assertIsNotNone(ref.get("error"), ref)
        self.assertEqual(ref["error"]["type"], "TypeError", ref["error"])
        for key in item["inputs"]:
          self.assertNotIn(key, ref["keyword_names"])
          self.assertTrue(
              any(n.startswith(key + "_") for n in ref["keyword_names"]),
              ref["keyword_names"])
        # hub_tf1: composites in, the fixture's recorded outputs out.
        module = self._load(item["module"], item["tags"])
        out = module.signatures[item["signature"]](**_decode(item["inputs"]))
        if not item["as_dict"]:
          out = out["default"]
        rtol, atol = _tolerances(name)
        self.assertEqual(tf2_fixtures_lib.check_fixtures.compare(
            item["expected"], _encode(out), rtol, atol, path=item["id"]), [])

  def test_keras3_sequential_only_in_hub_tf1(self):
    import keras  # pylint: disable=g-import-not-at-top
    for name, item in sorted(self.first.items()):
      with self.subTest(name):
        ref = self._ref(name + "/keras3")
        self.assertFalse(ref["is_keras3_layer"], ref)
        self.assertEqual(ref["layer_base_module"].split(".")[0], "tf_keras")
        self.assertIsNotNone(ref.get("error"), ref)
        self.assertEqual(ref["error"]["type"], "ValueError")
        self.assertIn("keras.Layer", ref["error"]["message"])
        layer = hub_tf1.KerasLayer(item["module"],
                                   tags=set(item["tags"]) or None)
        self.assertIsInstance(layer, keras.layers.Layer)
        keras.Sequential([layer])
        inputs = list(_decode(item["inputs"]).values())
        if (item["op"] == "call" and len(inputs) == 1 and
            inputs[0].shape.rank):
          x = inputs[0]
          # Keras 3 builds a Sequential model without an Input as float32.
          model = keras.Sequential([
              keras.Input(shape=x.shape[1:], dtype=x.dtype.name), layer])
          out = model(x)
          want = self._ref(item["id"])["output"]
          if "dict" in want:
            want = want["dict"]["default"]
          rtol, atol = _tolerances(name)
          self.assertEqual(tf2_fixtures_lib.check_fixtures.compare(
              want, _encode(out), rtol, atol, path=name + "/keras3"), [])

  def test_trainable_only_in_hub_tf1(self):
    for name, item in sorted(self.first.items()):
      with self.subTest(name):
        ref = self._ref(name + "/trainable")
        self.assertIsNotNone(ref.get("error"), ref)
        self.assertEqual(ref["error"]["type"], "ValueError", ref["error"])
        self.assertIn("TF1 Hub format", ref["error"]["message"])
        layer = hub_tf1.KerasLayer(item["module"], trainable=True,
                                   tags=set(item["tags"]) or None)
        inputs = _decode(item["inputs"])
        if len(inputs) == 1:
          inputs = next(iter(inputs.values()))
        with tf.GradientTape() as tape:
          out = layer(inputs, training=True)
          loss = tf.add_n([tf.reduce_sum(tf.cast(t, tf.float32))
                           for t in tf.nest.flatten(out, expand_composites=True)
                           if t.dtype.is_floating])
        weights = layer.trainable_weights
        self.assertLen(weights, len(layer.resolved_object.trainable_variables))
        if weights and name not in _NO_VARIABLE_PATH:
          grads = tape.gradient(loss, weights)
          self.assertTrue(any(g is not None for g in grads),
                          "no gradient reaches %s's weights" % name)

  def test_regularization_losses_only_in_hub_tf1(self):
    ref = self._ref(_REGULARIZED + "/losses")
    self.assertNotIn("error", ref, ref.get("error"))
    self.assertEqual((ref["load_losses"], ref["layer_losses"]), (0, 0), ref)
    module = hub_tf1.load(_module_dir(_REGULARIZED), tags={"train"})
    losses = [float(l()) for l in module.regularization_losses]
    self.assertNotEmpty(losses)
    self.assertTrue(all(np.isfinite(l) and l > 0 for l in losses), losses)
    layer = hub_tf1.KerasLayer(_module_dir(_REGULARIZED), trainable=True)
    item = self.first[_REGULARIZED]
    inputs = _decode(item["inputs"])
    layer(next(iter(inputs.values())) if len(inputs) == 1 else inputs,
          training=True)
    self.assertLen(layer.losses, len(losses))
    np.testing.assert_allclose([float(l) for l in layer.losses], losses,
                               rtol=1e-5)


if __name__ == "__main__":
  absltest.main()
