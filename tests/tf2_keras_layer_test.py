"""Tests of hub_tf1.KerasLayer: fixtures, Keras models, fine-tuning, errors.

The expected numbers are the fixtures' (recorded with tensorflow_hub 0.15 in
TF1 graph mode); Keras is whatever `tf.keras` is here (Keras 3 on TF 2.21,
Keras 2 on TF 2.15), and tf_keras on TF 2.21 in a subprocess with
TF_USE_LEGACY_KERAS=1.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from tests import tf2_fixtures_lib

keras = tf.keras
_REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# Gradients through TF1 while loops cannot be built in TF2 functions (see
# TfOneWhileLoopsTest): their train steps are checked to fail clearly.
_NO_GRADIENT = {"control_flow_v1"}


def _module(name: str) -> str:
  fixture = tf2_fixtures_lib.read_fixture(name)
  return os.path.join(tf2_fixtures_lib.MODULES, fixture["module_dir"])


class _LayerAsLoaded(object):
  """What apply_differences needs (spec, signatures) through KerasLayers."""

  def __init__(self, handle, tags=None):
    self._handle = handle
    self._tags = tags
    self._layers = {}
    self.spec = hub.load_module_spec(handle)
    self.signatures = self

  def __getitem__(self, signature):
    if signature not in self._layers:
      self._layers[signature] = hub.KerasLayer(
          self._handle, tags=self._tags, signature=signature,
          signature_outputs_as_dict=True)
    layer = self._layers[signature]
    return lambda **inputs: layer(inputs)


def _example(info, batch: int = 2) -> tf.Tensor:
  """A batch for a dense input: ones, or strings of vocabulary-free words."""
  shape = [batch] + [d or 3 for d in info.get_shape().as_list()[1:]]
  if info.dtype == tf.string:
    return tf.fill(shape, "hello world")
  return tf.ones(shape, info.dtype)


def _dense_inputs(spec, signature="default"):
  infos = spec.get_input_info_dict(signature)
  if not all(not i.is_composite and i.get_shape().rank for i in
             infos.values()):
    return None
  return infos


class FixturesTest(parameterized.TestCase):

  @parameterized.parameters(*tf2_fixtures_lib.fixtures_with("apply"))
  def test_apply_matches_fixture(self, name):
    reasons = tf2_fixtures_lib.apply_differences(_LayerAsLoaded, name)
    self.assertEqual(reasons, [])

  @parameterized.parameters(*[
      n for n in tf2_fixtures_lib.fixtures_with("train_step")
      if n not in _NO_GRADIENT])
  def test_train_step_matches_fixture(self, name):
    reasons = tf2_fixtures_lib.train_step_differences(hub.KerasLayer, name)
    self.assertEqual(reasons, [])

  @parameterized.parameters(*tf2_fixtures_lib.fixtures_with("apply"))
  def test_functional_model_equals_direct_call(self, name):
    handle = _module(name)
    spec = hub.load_module_spec(handle)
    infos = _dense_inputs(spec)
    if infos is None or "default" not in spec.get_signature_names():
      self.skipTest("signature 'default' of %s has composite or scalar "
                    "inputs" % name)
    layer = hub.KerasLayer(handle, signature_outputs_as_dict=True)
    inputs = {k: keras.Input(shape=i.get_shape().as_list()[1:],
                             dtype=i.dtype, name=k)
              for k, i in sorted(infos.items())}
    model = keras.Model(inputs, layer(inputs))
    values = {k: _example(i) for k, i in infos.items()}
    direct = hub.load(handle).signatures["default"](**values)
    through_model = model(values)
    self.assertEqual(sorted(through_model), sorted(direct))
    for key in direct:
      np.testing.assert_allclose(through_model[key], direct[key], rtol=1e-6)


class KerasModelTest(absltest.TestCase):

  def test_sequential_string_input_as_tensorflow_hub_documents_it(self):
    # tensorflow_hub's documented form (input_shape + dtype), the form
    # without either, and an explicit Input give the same model output.
    x = tf.constant(["hello world", "cat"])
    outputs = []
    for kwargs in ({"input_shape": [], "dtype": tf.string}, {}, None):
      keras.utils.set_random_seed(3)
      layer = hub.KerasLayer(_module("text_embedding_nnlm"), **(kwargs or {}))
      head = keras.layers.Dense(2)
      stack = [layer, head] if kwargs is not None else [
          keras.Input(shape=(), dtype=tf.string), layer, head]
      outputs.append(np.array(keras.Sequential(stack)(x)))
      np.testing.assert_allclose(np.array(head(layer(x))), outputs[-1],
                                 rtol=1e-6)
    for other in outputs[1:]:
      np.testing.assert_allclose(other, outputs[0], rtol=1e-6)

  def test_sequential_fit_fine_tunes_exports_and_reloads(self):
    work = self.create_tempdir().full_path
    module_copy = os.path.join(work, "module")
    shutil.copytree(_module("finetuned_text_embedding"), module_copy)
    keras.utils.set_random_seed(1)  # The Dense layer's initial weights.
    layer = hub.KerasLayer(module_copy, trainable=True)
    model = keras.Sequential([
        keras.Input(shape=(), dtype=tf.string), layer,
        keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy")
    x = tf.constant(["good movie", "bad movie", "great film",
                     "awful film"] * 8)
    y = tf.constant([1.0, 0.0, 1.0, 0.0] * 8)
    before = {n: np.array(w) for n, w in layer.module_weights.items()}
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0)
    self.assertLess(history.history["loss"][-1], history.history["loss"][0])
    for name, value in before.items():
      self.assertFalse(np.allclose(value, layer.module_weights[name]), name)
    path = os.path.join(self.create_tempdir().full_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(x[:4]), model(x[:4]), rtol=1e-6)
    self.assertIsInstance(reloaded.layers[0], hub.KerasLayer)
    # A serving SavedModel that needs neither hub_tf1 nor the module files
    # (its vocabulary is copied as an asset).
    export_dir = os.path.join(work, "export")
    if not hasattr(keras, "Variable"):  # Keras 2 (Keras 3 has keras.Variable)
      # Keras 2's model.export tracks only its own lookup layers' tables.
      tf.saved_model.save(model, export_dir, signatures=tf.function(
          lambda x: {"output_0": model(x)},
          input_signature=[tf.TensorSpec([None], tf.string)]))
    else:
      model.export(export_dir)
    shutil.rmtree(module_copy)
    sentences = ["good movie", "awful film", "words it never saw"]
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_SNIPPET, export_dir] + sentences,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        cwd=work, capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(done.returncode, 0, done.stderr[-4000:])
    served = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertFalse(served["hub_tf1_importable"])
    np.testing.assert_allclose(served["outputs"],
                               model(tf.constant(sentences)).numpy(),
                               rtol=1e-5)

  def test_not_trainable_keeps_weights_and_runs_inference_graph(self):
    layer = hub.KerasLayer(_module("train_eval_bn_dropout"))
    self.assertEmpty(layer.trainable_weights)
    x = tf.ones([4, 5])
    before = {n: np.array(w) for n, w in layer.module_weights.items()}
    eval_out = layer(x, training=False)
    np.testing.assert_array_equal(layer(x, training=True), eval_out)
    self.assertEmpty(layer.losses)
    for name, value in before.items():
      np.testing.assert_array_equal(value, layer.module_weights[name])

  def test_trainable_training_runs_train_variant_and_updates(self):
    layer = hub.KerasLayer(_module("train_eval_bn_dropout"), trainable=True)
    names = {w.name.split("/")[-1].split(":")[0]
             for w in layer.trainable_weights}
    self.assertIn("hidden__kernel", names)
    self.assertNotIn("bn__moving_mean", names)
    x = tf.random.stateless_normal([8, 5], seed=[1, 2])
    moving_mean = np.array(layer.module_weights["bn/moving_mean"])
    layer(x, training=False)
    np.testing.assert_array_equal(moving_mean,
                                  layer.module_weights["bn/moving_mean"])
    layer(x, training=True)
    self.assertFalse(np.allclose(moving_mean,
                                 layer.module_weights["bn/moving_mean"]))
    self.assertNotEmpty(layer.losses)

  def test_arguments_and_output_key(self):
    handle = _module("multi_signature")
    spec = hub.load_module_spec(handle)
    for signature in spec.get_signature_names():
      infos = spec.get_input_info_dict(signature)
      outputs = spec.get_output_info_dict(signature)
      if len(infos) < 2 or not _dense_inputs(spec, signature):
        continue
      first, *rest = sorted(infos)
      values = {k: _example(infos[k]) for k in infos}
      key = sorted(outputs)[0]
      layer = hub.KerasLayer(handle, signature=signature, output_key=key,
                             arguments={k: values[k] for k in rest})
      expected = hub.load(handle).signatures[signature](**values)[key]
      np.testing.assert_allclose(layer(values[first]), expected, rtol=1e-6)
      return
    self.skipTest("multi_signature has no dense signature with 2 inputs")


class BadInputTest(absltest.TestCase):

  def test_unknown_signature(self):
    with self.assertRaisesRegex(KeyError, "'nope'.*multi_signature"):
      hub.KerasLayer(_module("multi_signature"), signature="nope")

  def test_unknown_output_key(self):
    with self.assertRaisesRegex(KeyError, "no output 'nope'"):
      hub.KerasLayer(_module("multi_signature"), output_key="nope")

  def test_output_key_and_as_dict(self):
    with self.assertRaisesRegex(ValueError, "at most one"):
      hub.KerasLayer(_module("multi_signature"), output_key="default",
                     signature_outputs_as_dict=True)

  def test_unknown_tags(self):
    with self.assertRaisesRegex(KeyError, "nope"):
      hub.KerasLayer(_module("multi_signature"), tags={"nope"})

  def test_extra_input_key(self):
    layer = hub.KerasLayer(_module("train_eval_bn_dropout"))
    with self.assertRaisesRegex(TypeError, "extra given.*bogus"):
      layer({"features": tf.ones([1, 5]), "bogus": tf.ones([1])})

  def test_wrong_dtype(self):
    layer = hub.KerasLayer(_module("train_eval_bn_dropout"))
    with self.assertRaisesRegex((TypeError, ValueError), "features"):
      layer(tf.constant([["a"] * 5]))

  def test_missing_module(self):
    missing = os.path.join(self.create_tempdir().full_path, "nothing")
    with self.assertRaisesRegex(Exception, "nothing"):
      hub.KerasLayer(missing)


_SERVE_SNIPPET = r"""
import importlib.util, json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
inputs = tf.constant(sys.argv[2:])
if hasattr(loaded, "serve"):  # Keras 3 model.export
  outputs = loaded.serve(inputs)
else:
  outputs = loaded.signatures["serving_default"](inputs)["output_0"]
print(json.dumps({
    "hub_tf1_importable": importlib.util.find_spec("hub_tf1") is not None,
    "outputs": outputs.numpy().tolist()}))
"""

_TF_KERAS_SNIPPET = r"""
import json, sys
import numpy as np
import tensorflow as tf
import hub_tf1 as hub
import tf_keras
layer = hub.KerasLayer(sys.argv[1], trainable=True)
assert isinstance(layer, tf_keras.layers.Layer), type(layer).__mro__
model = tf_keras.Sequential([layer, tf_keras.layers.Dense(1)])
x = np.random.RandomState(0).rand(16, 5).astype("float32")
y = x.sum(axis=1, keepdims=True)
model.compile(tf_keras.optimizers.SGD(0.05), "mse")
before = {n: np.array(w) for n, w in layer.module_weights.items()}
model.fit(x, y, epochs=2, batch_size=8, verbose=0)
changed = sorted(n for n, v in before.items()
                 if not np.allclose(v, layer.module_weights[n]))
print(json.dumps({"keras": tf_keras.__version__, "changed": changed,
                  "losses": len(layer.losses)}))
"""


class TfKerasTest(absltest.TestCase):

  def test_under_tf_use_legacy_keras(self):
    if tf.__version__.startswith("2.15"):
      self.skipTest("tf.keras is Keras 2 on TF 2.15: the other tests are "
                    "the tf_keras case here")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=_REPO)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
      f.write(_TF_KERAS_SNIPPET)
    self.addCleanup(os.unlink, f.name)
    done = subprocess.run(
        [sys.executable, f.name, _module("train_eval_bn_dropout")], env=env,
        capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(done.returncode, 0, done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    self.assertStartsWith(result["keras"], "2.")
    # Trainable weights move; the moving averages move through update ops.
    self.assertContainsSubset(["bn/moving_mean", "hidden/kernel"],
                              result["changed"])
    self.assertGreater(result["losses"], 0)


class TfOneWhileLoopsTest(absltest.TestCase):
  """control_flow_v1: TF1 while loops run, their gradients raise clearly."""

  def _layer(self, **kwargs):
    return hub.KerasLayer(_module("control_flow_v1"), signature="smooth",
                          signature_outputs_as_dict=True, **kwargs)

  def test_fine_tuning_raises_naming_module_and_signature(self):
    layer = self._layer(trainable=True)
    x = tf.constant([1.0, 2.0, 3.0, 4.0])
    layer(x, training=True)  # Traced outside a tape first.
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(layer(x, training=True)["last"])
    self.assertNotEmpty(tape.watched_variables())
    with self.assertRaisesRegex(
        hub.UnsupportedGraphError,
        "control_flow_v1, signature 'smooth': no gradients through TF1 "
        "while loops.*hub_tf1.Module"):
      tape.gradient(loss, layer.trainable_weights)

  def test_frozen_under_a_tape_gives_the_untaped_outputs(self):
    layer = self._layer()
    x = tf.constant([1.0, 2.0, 3.0, 4.0])
    plain = layer(x)["last"].numpy()
    with tf.GradientTape() as tape:
      tape.watch(x)
      taped = layer(x)["last"]
    np.testing.assert_allclose(taped.numpy(), plain)
    with self.assertRaises(hub.UnsupportedGraphError):
      tape.gradient(taped, x)


if __name__ == "__main__":
  absltest.main()
