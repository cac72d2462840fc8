"""LatestModuleExporter in canned Estimators: the hub feature columns' modules.

tensorflow_hub 0.15 exports only modules registered in a `model_fn`, which a
canned Estimator does not have (tensorflow/hub#132, #165); hub_tf1 also
exports the modules that hub feature columns built, named after the column.
Each case trains with `train_and_evaluate` and checks the exported module's
variables against the checkpoint it was exported from.
"""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from estimator_integration import exporter as exporter_lib

_DIM = 3
# The tuned cases use tanh, whose gradient is never zero: with ReLU, a random
# start can leave every hidden unit dead for these four examples, so no
# gradient reaches the module and "was it fine-tuned" would depend on luck.
_SEEDED = tf.estimator.RunConfig(tf_random_seed=7)


def _text_module_fn():
  text = tf.compat.v1.placeholder(tf.string, [None])
  ids = tf.strings.to_hash_bucket_fast(text, 16)
  embeddings = tf.compat.v1.get_variable(
      "embeddings", [16, _DIM],
      initializer=tf.compat.v1.random_normal_initializer(seed=1))
  hub.add_signature(inputs=text,
                    outputs=tf.nn.embedding_lookup(embeddings, ids))


def _image_module_fn():
  images = tf.compat.v1.placeholder(tf.float32, [None, 2, 2, 3])
  weights = tf.compat.v1.get_variable(
      "weights", [12, _DIM],
      initializer=tf.compat.v1.random_normal_initializer(seed=2))
  hub.add_signature(inputs={"images": images},
                    outputs=tf.matmul(tf.reshape(images, [-1, 12]), weights))


def _export(module_fn, directory):
  with tf.Graph().as_default():
    module = hub.Module(hub.create_module_spec(module_fn))
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(directory, session)
  return directory


def _values(module_dir):
  with tf.Graph().as_default():
    module = hub.Module(module_dir)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return {k: session.run(v) for k, v in module.variable_map.items()}


class CannedExportTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    cls.text = _export(_text_module_fn, os.path.join(root, "text"))
    cls.image = _export(_image_module_fn, os.path.join(root, "image"))

  def _input_fn(self):
    data = ({"text": ["good film", "bad plot", "great", "awful film"],
             "tokens": ["good film", "bad plot", "great", "awful film"],
             "n": [1.0, 2.0, 3.0, 4.0],
             "img": np.linspace(0, 1, 48, dtype=np.float32).reshape(
                 [4, 2, 2, 3])}, [1, 0, 1, 0])

    def split_tokens(features, labels):
      features = dict(features)
      features["tokens"] = tf.strings.split(features["tokens"]).to_sparse()
      return features, labels
    return (tf.data.Dataset.from_tensor_slices(data).repeat().batch(2)
            .map(split_tokens))

  def _serving_input_fn(self):
    features = {
        "text": tf.compat.v1.placeholder(tf.string, [None]),
        "tokens": tf.compat.v1.sparse_placeholder(tf.string),
        "n": tf.compat.v1.placeholder(tf.float32, [None]),
        "img": tf.compat.v1.placeholder(tf.float32, [None, 2, 2, 3])}
    return tf.estimator.export.ServingInputReceiver(features, features)

  def _train_and_export(self, estimator):
    exporter = hub.LatestModuleExporter("hub", self._serving_input_fn)
    tf.estimator.train_and_evaluate(
        estimator,
        tf.estimator.TrainSpec(self._input_fn, max_steps=20),
        tf.estimator.EvalSpec(self._input_fn, steps=1, exporters=[exporter],
                              throttle_secs=0))
    base = os.path.join(estimator.model_dir, "export", "hub")
    exports = sorted(n for n in tf.io.gfile.listdir(base) if n.isdigit())
    self.assertNotEmpty(exports)
    return os.path.join(base, exports[-1]), estimator.latest_checkpoint()

  def _check(self, export_dir, checkpoint, column, scope, original, tuned):
    """The export of `column` holds the checkpoint's `scope`/<key> values."""
    exported = _values(os.path.join(export_dir, column.name))
    original_values = _values(original)
    names = [n for n, _ in tf.train.list_variables(checkpoint)]
    for key, value in exported.items():
      self.assertIn(scope + key, names)
      np.testing.assert_array_equal(
          value, tf.train.load_variable(checkpoint, scope + key))
      self.assertEqual(not np.allclose(value, original_values[key]), tuned,
                       "%s of %s" % (key, column.name))

  def _model_dir(self):
    return self.create_tempdir().full_path

  def test_v1_dnn_classifier_exports_fine_tuned_text_module(self):
    column = hub.text_embedding_column("text", self.text, trainable=True)
    estimator = tf.compat.v1.estimator.DNNClassifier(
        hidden_units=[4], feature_columns=[column], activation_fn=tf.nn.tanh,
        model_dir=self._model_dir(), config=_SEEDED)
    export_dir, checkpoint = self._train_and_export(estimator)
    self.assertEqual(tf.io.gfile.listdir(export_dir), [column.name])
    self._check(export_dir, checkpoint, column,
                "dnn/input_from_feature_columns/input_layer/%s/module/" %
                column.name, self.text, tuned=True)

  def test_v2_dnn_classifier_exports_text_module(self):
    column = hub.text_embedding_column("text", self.text)
    estimator = tf.estimator.DNNClassifier(
        hidden_units=[4], feature_columns=[column],
        model_dir=self._model_dir())
    export_dir, checkpoint = self._train_and_export(estimator)
    # DenseFeatures (Keras) makes the column's module at the top level; the
    # Keras-based canned estimators do not train it (as with the original).
    self._check(export_dir, checkpoint, column, "module/", self.text,
                tuned=False)

  def test_dnn_linear_combined_exports_every_column(self):
    text = hub.text_embedding_column("text", self.text, trainable=True)
    tokens = hub.sparse_text_embedding_column(
        "tokens", self.text, combiner="mean", default_value="", trainable=True)
    image = hub.image_embedding_column("img", self.image)
    estimator = tf.compat.v1.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=[tf.feature_column.numeric_column("n")],
        dnn_feature_columns=[text, tokens, image], dnn_hidden_units=[3],
        dnn_activation_fn=tf.nn.tanh, model_dir=self._model_dir(),
        config=_SEEDED)
    export_dir, checkpoint = self._train_and_export(estimator)
    self.assertCountEqual(tf.io.gfile.listdir(export_dir),
                          [text.name, tokens.name, image.name])
    layer = "dnn/input_from_feature_columns/input_layer/%s/module/"
    self._check(export_dir, checkpoint, text, layer % text.name, self.text,
                tuned=True)
    # The sparse column builds its module in the enclosing scope (as the
    # original does).
    self._check(export_dir, checkpoint, tokens,
                "dnn/input_from_feature_columns/module/", self.text,
                tuned=True)
    self._check(export_dir, checkpoint, image, layer % image.name,
                self.image, tuned=False)

  def test_linear_classifier(self):
    column = hub.text_embedding_column("text", self.text)
    estimator = tf.compat.v1.estimator.LinearClassifier(
        [column], model_dir=self._model_dir())
    export_dir, checkpoint = self._train_and_export(estimator)
    self._check(export_dir, checkpoint, column,
                "linear/linear_model/%s/module/" % column.name, self.text,
                tuned=False)

  def test_registered_and_column_names_do_not_clash(self):
    with tf.Graph().as_default():
      column = hub.text_embedding_column("text", self.text)
      tf.compat.v1.feature_column.input_layer(
          {"text": tf.constant(["a"])}, [column])
      other = hub.Module(self.text)
      hub.register_module_for_export(other, column.name)
      names = [n for n, _ in exporter_lib.modules_to_export()]
    self.assertEqual(names, [column.name, column.name + "_1"])


if __name__ == "__main__":
  absltest.main()
