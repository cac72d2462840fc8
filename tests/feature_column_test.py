"""Tests of the hub feature columns (estimator_integration/feature_columns.py).

Modules: reference fixtures written by tensorflow_hub 0.15 (text_embedding_nnlm,
text_embedding_tokens, image_feature_vector, multi_signature) and small ones
made here with `create_module_spec` for the error checks.
"""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import estimator_integration as ei
import hub_tf1 as hub

_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "testdata", "fixtures", "ref_modules")
_TEXT = os.path.join(_FIXTURES, "text_embedding_nnlm")
_TOKENS = os.path.join(_FIXTURES, "text_embedding_tokens")
_IMAGE = os.path.join(_FIXTURES, "image_feature_vector")
_MULTI = os.path.join(_FIXTURES, "multi_signature")


def _dense_features(columns):
  """Keras 2's v1 DenseFeatures: tf.keras's on TF <= 2.15, else tf_keras's.

  Keras 3 has no feature-column layer; on TF >= 2.16 the Estimator itself
  uses tf_keras, whose v1 API is what `tf.compat.v1.keras` is with
  TF_USE_LEGACY_KERAS=1 (reached directly here, as that variable is unset).
  """
  layers = tf.compat.v1.keras.layers
  if not hasattr(layers, "DenseFeatures"):
    import tf_keras.api._v1.keras as tf_keras_v1  # pylint: disable=g-import-not-at-top
    layers = tf_keras_v1.layers
  return layers.DenseFeatures(columns)


def _spec(module_fn):
  return hub.create_module_spec(module_fn)


def _run(fetches):
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    return session.run(fetches)


class TextEmbeddingColumnTest(absltest.TestCase):

  def test_properties(self):
    column = ei.text_embedding_column("comment", _TEXT)
    self.assertEqual(column.name, "comment_hub_module_embedding")
    self.assertEqual(column.parents, ["comment"])
    self.assertEqual(column.dtype, tf.float32)
    self.assertEqual(column.variable_shape, tf.TensorShape([8]))
    self.assertEqual(column._variable_shape, tf.TensorShape([8]))
    self.assertEqual(column.parse_example_spec,
                     {"comment": tf.io.FixedLenFeature([1], tf.string)})
    self.assertEqual(column._parse_example_spec, column.parse_example_spec)
    self.assertTrue(column._is_v2_column)
    self.assertIsInstance(column, tf.__internal__.feature_column.DenseColumn)
    self.assertIsInstance(column.module_spec, hub.ModuleSpec)
    # Hashable and comparable: columns are dict keys in transformation caches.
    self.assertEqual(column, ei.text_embedding_column("comment", _TEXT))
    self.assertIn(column, {column: 1})

  def test_key_may_be_a_column(self):
    source = tf.feature_column.categorical_column_with_hash_bucket("src", 10)
    column = ei.text_embedding_column(source, _TEXT)
    self.assertEqual(column.name, "src_hub_module_embedding")
    self.assertEqual(column.parents, [source])

  def test_input_layer_equals_module(self):
    sentences = ["the cat sat", "dog", ""]
    with tf.Graph().as_default():
      column = ei.text_embedding_column("text", _TEXT)
      features = {"text": tf.constant([[s] for s in sentences])}
      dense = tf.compat.v1.feature_column.input_layer(features, [column])
      names = [v.op.name for v in tf.compat.v1.global_variables()]
      direct = hub.Module(_TEXT, name="direct")(tf.constant(sentences))
      got, want = _run([dense, direct])
    self.assertEqual(got.shape, (3, 8))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    self.assertTrue(any(
        n.startswith("input_layer/text_hub_module_embedding/module/")
        for n in names), names)

  def test_token_module_with_non_default_input_name(self):
    with tf.Graph().as_default():
      column = ei.text_embedding_column("tok", _TOKENS)
      dense = tf.compat.v1.feature_column.input_layer(
          {"tok": tf.constant([["hello"], ["world"]])}, [column])
      direct = hub.Module(_TOKENS, name="direct")(
          tf.constant(["hello", "world"]))
      got, want = _run([dense, direct])
    np.testing.assert_allclose(got, want, rtol=1e-6)

  def test_trainable_follows_column_and_input_layer(self):
    cases = [(True, True, True), (True, False, False), (False, True, False)]
    for column_trainable, layer_trainable, expect in cases:
      with tf.Graph().as_default():
        column = ei.text_embedding_column("text", _TEXT,
                                          trainable=column_trainable)
        tf.compat.v1.feature_column.input_layer(
            {"text": tf.constant([["x"]])}, [column],
            trainable=layer_trainable)
        trainable = [v.op.name for v in tf.compat.v1.trainable_variables()
                     if "/module/" in v.op.name]
      self.assertEqual(bool(trainable), expect,
                       (column_trainable, layer_trainable, trainable))

  def test_v2_protocol_keeps_one_module_per_state(self):
    with tf.Graph().as_default():
      column = ei.text_embedding_column("text", _TEXT, trainable=True)
      layer = _dense_features([column])
      dense = layer({"text": tf.constant([["a b"], ["c"]])})
      direct = hub.Module(_TEXT, name="direct")(tf.constant(["a b", "c"]))
      trainable = [v.op.name for v in tf.compat.v1.trainable_variables()]
      got, want = _run([dense, direct])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    self.assertTrue(any("text_hub_module_embedding/module/" in n
                        for n in trainable), trainable)

  def test_config_round_trip_for_string_spec(self):
    column = ei.text_embedding_column("text", _TEXT, trainable=True)
    config = column.get_config()
    self.assertEqual(config, {"key": "text", "module_spec_path": _TEXT,
                              "trainable": True})
    again = type(column).from_config(config)
    self.assertEqual(again, column)
    self.assertEqual(again.variable_shape, column.variable_shape)

  def test_config_needs_string_spec(self):
    column = ei.text_embedding_column("text", hub.load_module_spec(_TEXT))
    with self.assertRaisesRegex(NotImplementedError, "string `module_spec`"):
      column.get_config()

  def test_rejects_non_text_module(self):
    with self.assertRaisesRegex(ValueError, "Module is not a text-embedding") as cm:
      ei.text_embedding_column("x", _MULTI)
    self.assertIn("tf.Tensor(shape=(?,), dtype=string)", str(cm.exception))

  def test_rejects_two_inputs(self):
    def module_fn():
      a = tf.compat.v1.placeholder(tf.string, [None])
      b = tf.compat.v1.placeholder(tf.string, [None])
      hub.add_signature(inputs={"a": a, "b": b},
                        outputs=tf.zeros([tf.shape(a)[0], 2]) +
                        tf.zeros([tf.shape(b)[0], 2]))
    with self.assertRaisesRegex(ValueError, "must require only one input"):
      ei.text_embedding_column("x", _spec(module_fn))

  def test_rejects_bad_outputs(self):
    def rank3_fn():
      s = tf.compat.v1.placeholder(tf.string, [None])
      hub.add_signature(inputs=s, outputs=tf.zeros([tf.shape(s)[0], 2, 2]))

    def unknown_width_fn():
      s = tf.compat.v1.placeholder(tf.string, [None])
      width = tf.compat.v1.placeholder_with_default(3, [])
      hub.add_signature(inputs=s, outputs=tf.zeros([tf.shape(s)[0], width]))

    def no_default_fn():
      s = tf.compat.v1.placeholder(tf.string, [None])
      hub.add_signature(inputs=s,
                        outputs={"other": tf.zeros([tf.shape(s)[0], 2])})

    for module_fn, fragment in [
        (rank3_fn, "'default' output of tf.Tensor(shape=(?,K)"),
        (unknown_width_fn, "'default' output of tf.Tensor(shape=(?,K)"),
        (no_default_fn, "must have a 'default' output")]:
      with self.assertRaisesRegex(ValueError, "not a text-embedding") as cm:
        ei.text_embedding_column("x", _spec(module_fn))
      self.assertIn(fragment, str(cm.exception))

  def test_rejects_unknown_spec_type(self):
    with self.assertRaisesRegex(ValueError, "Unknown module spec type"):
      ei.text_embedding_column("x", 42)


class SparseTextEmbeddingColumnTest(absltest.TestCase):

  def _tokens(self):
    # Row 0: two tokens, row 1: none, row 2: one token.
    return tf.SparseTensor(indices=[[0, 0], [0, 1], [2, 0]],
                           values=["the", "cat", "dog"], dense_shape=[3, 2])

  def test_properties(self):
    column = ei.sparse_text_embedding_column("t", _TEXT, "mean", None)
    self.assertEqual(column.name, "t_hub_module_embedding")
    self.assertEqual(column.parse_example_spec,
                     {"t": tf.io.VarLenFeature(tf.string)})
    self.assertEqual(column.variable_shape, tf.TensorShape([8]))
    self.assertTrue(column._is_v2_column)

  def test_combiners_and_default_value(self):
    for combiner in ("mean", "sum", "sqrtn"):
      with tf.Graph().as_default():
        column = ei.sparse_text_embedding_column("t", _TEXT, combiner, "unk")
        dense = tf.compat.v1.feature_column.input_layer(
            {"t": self._tokens()}, [column])
        words = hub.Module(_TEXT, name="direct")(
            tf.constant(["the", "cat", "unk", "dog"]))
        got, vectors = _run([dense, words])
      pair = vectors[0:2]
      if combiner == "mean":
        row0 = pair.mean(axis=0)
      elif combiner == "sum":
        row0 = pair.sum(axis=0)
      else:
        row0 = pair.sum(axis=0) / np.sqrt(2.0)
      np.testing.assert_allclose(got[0], row0, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(got[1], vectors[2], rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(got[2], vectors[3], rtol=1e-5, atol=1e-6)

  def test_empty_row_without_default_is_zero(self):
    with tf.Graph().as_default():
      column = ei.sparse_text_embedding_column("t", _TEXT, "sum", None)
      dense = tf.compat.v1.feature_column.input_layer(
          {"t": self._tokens()}, [column])
      got = _run(dense)
    np.testing.assert_array_equal(got[1], np.zeros(8, np.float32))
    self.assertGreater(np.abs(got[0]).sum(), 0)

  def test_trainable(self):
    with tf.Graph().as_default():
      column = ei.sparse_text_embedding_column("t", _TEXT, "sum", None,
                                               trainable=True)
      tf.compat.v1.feature_column.input_layer({"t": self._tokens()}, [column])
      self.assertNotEmpty([v for v in tf.compat.v1.trainable_variables()
                           if "/module/" in v.op.name])

  def test_rejects_bad_combiner_and_module(self):
    with self.assertRaisesRegex(ValueError, "combiner must be"):
      ei.sparse_text_embedding_column("t", _TEXT, "max", None)
    with self.assertRaisesRegex(ValueError, "not a text-embedding"):
      ei.sparse_text_embedding_column("t", _MULTI, "sum", None)


class ImageEmbeddingColumnTest(absltest.TestCase):

  def test_properties_and_sizes(self):
    column = ei.image_embedding_column("img", _IMAGE)
    self.assertEqual(column.name, "img_hub_module_embedding")
    self.assertEqual(column.variable_shape, tf.TensorShape([8]))
    self.assertEqual(column.parse_example_spec,
                     {"img": tf.io.FixedLenFeature([16, 16, 3], tf.float32)})
    sized = ei.image_embedding_column("img", _IMAGE, image_size=[20, 24])
    self.assertEqual(sized.image_size, (20, 24))
    self.assertEqual(sized.parse_example_spec,
                     {"img": tf.io.FixedLenFeature([20, 24, 3], tf.float32)})
    self.assertIn(sized, {sized: 1})  # Still hashable after the list.

  def test_input_layer_equals_module_and_is_frozen(self):
    images = np.random.RandomState(0).rand(2, 16, 16, 3).astype(np.float32)
    with tf.Graph().as_default():
      column = ei.image_embedding_column("img", _IMAGE)
      dense = tf.compat.v1.feature_column.input_layer(
          {"img": tf.constant(images)}, [column], trainable=True)
      direct = hub.Module(_IMAGE, name="direct")({"images": images})
      trainable = tf.compat.v1.trainable_variables()
      got, want = _run([dense, direct])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    self.assertEmpty(trainable)

  def test_v2_protocol(self):
    images = np.random.RandomState(1).rand(3, 16, 16, 3).astype(np.float32)
    with tf.Graph().as_default():
      column = ei.image_embedding_column("img", _IMAGE)
      dense = _dense_features([column])(
          {"img": tf.constant(images)})
      direct = hub.Module(_IMAGE, name="direct")({"images": images})
      got, want = _run([dense, direct])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

  def test_config_round_trip(self):
    column = ei.image_embedding_column("img", _IMAGE, image_size=(16, 16))
    again = type(column).from_config(dict(column.get_config(),
                                          image_size=[16, 16]))
    self.assertEqual(again, column)

  def test_rejects_non_image_module(self):
    with self.assertRaisesRegex(ValueError,
                                "not usable as image embedding") as cm:
      ei.image_embedding_column("img", _TEXT)
    self.assertIn("name 'images'", str(cm.exception))

  def test_unknown_size_needs_image_size(self):
    def module_fn():
      images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
      hub.add_signature(inputs={"images": images},
                        outputs=tf.reduce_mean(images, axis=[1, 2]))
    spec = _spec(module_fn)
    with self.assertRaisesRegex(ValueError, "get_expected_image_size"):
      ei.image_embedding_column("img", spec)
    column = ei.image_embedding_column("img", spec, image_size=(5, 6))
    self.assertEqual(column.variable_shape, tf.TensorShape([3]))

  def test_rejects_bad_output(self):
    def module_fn():
      images = tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 3])
      hub.add_signature(inputs={"images": images}, outputs=images)
    with self.assertRaisesRegex(ValueError, r"tf.Tensor\(shape=\(_,K\)"):
      ei.image_embedding_column("img", _spec(module_fn))


class CannedEstimatorTest(absltest.TestCase):
  """The columns inside canned estimators (v1 and v2 feature-column paths)."""

  def _input_fn(self):
    data = ({"text": ["good film", "bad plot", "great", "awful film"],
             "n": [1.0, 2.0, 3.0, 4.0]}, [1, 0, 1, 0])
    return tf.data.Dataset.from_tensor_slices(data).repeat().batch(2)

  def _train_and_evaluate(self, estimator):
    estimator.train(self._input_fn, max_steps=3)
    metrics = estimator.evaluate(self._input_fn, steps=1)
    self.assertEqual(metrics["global_step"], 3)
    return estimator.get_variable_names()

  def test_dnn_classifier(self):
    estimators = tf.compat.v1.estimator
    column = ei.text_embedding_column("text", _TEXT, trainable=True)
    names = self._train_and_evaluate(estimators.DNNClassifier(
        hidden_units=[4], feature_columns=[column],
        model_dir=tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())))
    module_vars = [n for n in names if "text_hub_module_embedding/module/" in n]
    # The fine-tuned module variables and their Adagrad slots are saved.
    self.assertTrue(any(n.endswith("Adagrad") for n in module_vars), names)

  def test_dnn_classifier_v2(self):
    column = ei.text_embedding_column("text", _TEXT)
    names = self._train_and_evaluate(tf.estimator.DNNClassifier(
        hidden_units=[4], feature_columns=[column],
        model_dir=tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())))
    self.assertTrue(any("module/embeddings" in n for n in names), names)

  def test_dnn_linear_combined_classifier(self):
    column = ei.text_embedding_column("text", _TEXT)
    for estimators in (tf.compat.v1.estimator, tf.estimator):
      names = self._train_and_evaluate(
          estimators.DNNLinearCombinedClassifier(
              linear_feature_columns=[tf.feature_column.numeric_column("n")],
              dnn_feature_columns=[column], dnn_hidden_units=[3],
              model_dir=tempfile.mkdtemp(
                  dir=absltest.get_default_test_tmpdir())))
      self.assertTrue(any("module/embeddings" in n for n in names), names)

  def test_linear_classifier(self):
    column = ei.text_embedding_column("text", _TEXT)
    names = self._train_and_evaluate(tf.compat.v1.estimator.LinearClassifier(
        [column],
        model_dir=tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())))
    self.assertIn("linear/linear_model/text_hub_module_embedding/weights",
                  names)


if __name__ == "__main__":
  absltest.main()
