"""Tests of the publishing side: create_module_spec, add_signature, messages.

Covers tag sets, signature values (dense, dict, sparse, ragged) and the
errors add_signature/create_module_spec raise, collection handling, attached
messages, image module info, and the kinds of state a module_fn may create
(ref/resource/partitioned variables, vocabulary tables, regularization
losses and update ops).
"""

import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from tests import testing_modules as tm

GraphKeys = tf.compat.v1.GraphKeys


def _training_dependent_module_fn(is_training):
  """`default`: x -> 2x under training, x + 1 otherwise."""
  x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
  y = x * 2.0 if is_training else x + 1.0
  hub.add_signature(inputs=x, outputs=y)
  if is_training:
    hub.add_signature("train_only", inputs=x, outputs=x * 3.0)


def _run(outputs, init=True):
  with tf.compat.v1.Session() as session:
    if init:
      tm.run_init(session)
    return session.run(outputs)


class TagsTest(tf.test.TestCase):

  def test_default_tags_is_one_empty_set(self):
    spec = hub.create_module_spec(tm.linear_module_fn)
    self.assertEqual(spec.get_tags(), [frozenset()])
    self.assertEqual(spec.get_signature_names(), ["default"])

  def test_two_variants_with_different_kwargs(self):
    spec = hub.create_module_spec(
        _training_dependent_module_fn,
        tags_and_args=[({"train"}, {"is_training": True}),
                       (set(), {"is_training": False})])
    tags = spec.get_tags()
    self.assertEqual(tags, [frozenset(), frozenset(["train"])])
    for t in tags:
      self.assertIsInstance(t, frozenset)
    self.assertCountEqual(spec.get_signature_names(tags={"train"}),
                          ["default", "train_only"])
    self.assertEqual(spec.get_signature_names(), ["default"])
    with tf.Graph().as_default():
      y_eval = hub.Module(spec)([1.0, 2.0])
      y_train = hub.Module(spec, tags={"train"})([1.0, 2.0])
      self.assertAllClose(_run([y_eval, y_train]),
                          [[2.0, 3.0], [2.0, 4.0]])

  def test_multi_tag_set(self):
    spec = hub.create_module_spec(
        _training_dependent_module_fn,
        tags_and_args=[(set(), {"is_training": False}),
                       ({"train", "gpu"}, {"is_training": True})])
    self.assertEqual(spec.get_tags(),
                     [frozenset(), frozenset(["gpu", "train"])])
    with tf.Graph().as_default():
      y = hub.Module(spec, tags={"gpu", "train"})([3.0])
      self.assertAllClose(_run(y), [6.0])

  def test_repeated_tag_sets(self):
    with self.assertRaisesRegex(ValueError, "used repeatedly"):
      hub.create_module_spec(
          _training_dependent_module_fn,
          tags_and_args=[({"a", "b"}, {"is_training": False}),
                         ({"b", "a"}, {"is_training": True})])


class SignatureTest(tf.test.TestCase):

  def test_single_tensor_signature(self):
    spec = hub.create_module_spec(tm.linear_module_fn)
    inputs = spec.get_input_info_dict()
    outputs = spec.get_output_info_dict()
    self.assertEqual(list(inputs), ["default"])
    self.assertEqual(list(outputs), ["default"])
    self.assertEqual(inputs["default"].dtype, tf.float32)
    self.assertEqual(inputs["default"].get_shape().as_list(), [None, 2])
    self.assertFalse(inputs["default"].is_sparse)
    self.assertEqual(outputs["default"].get_shape().as_list(), [None, 3])

  def test_dict_signature_and_empty_name_is_default(self):

    def module_fn():
      a = tf.compat.v1.placeholder(tf.int32, [2], name="a")
      b = tf.compat.v1.placeholder(tf.int32, [2], name="b")
      hub.add_signature(name="", inputs={"a": a, "b": b},
                        outputs={"prod": a * b, "default": a + b})
      hub.add_signature(name="neg", inputs={"a": a}, outputs={"neg": -a})

    spec = hub.create_module_spec(module_fn)
    self.assertCountEqual(spec.get_signature_names(), ["default", "neg"])
    self.assertCountEqual(spec.get_input_info_dict(), ["a", "b"])
    self.assertCountEqual(spec.get_output_info_dict(), ["prod", "default"])
    self.assertCountEqual(spec.get_output_info_dict("neg"), ["neg"])
    with tf.Graph().as_default():
      m = hub.Module(spec)
      out = m({"a": [1, 2], "b": [3, 4]}, as_dict=True)
      neg = m({"a": [5, 6]}, signature="neg", as_dict=True)
      got = _run([out, neg])
    self.assertAllEqual(got[0]["prod"], [3, 8])
    self.assertAllEqual(got[0]["default"], [4, 6])
    self.assertAllEqual(got[1]["neg"], [-5, -6])

  def test_sparse_tensor_values(self):

    def module_fn():
      sp = tf.compat.v1.sparse_placeholder(tf.float32, [None, 4], name="sp")
      hub.add_signature(
          inputs={"sp": sp},
          outputs={"default": tf.sparse.reduce_sum(sp, axis=1),
                   "doubled": tf.SparseTensor(sp.indices, sp.values * 2.0,
                                              sp.dense_shape)})

    spec = hub.create_module_spec(module_fn)
    info = spec.get_input_info_dict()["sp"]
    self.assertTrue(info.is_sparse)
    self.assertEqual(info.dtype, tf.float32)
    self.assertTrue(spec.get_output_info_dict()["doubled"].is_sparse)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      value = tf.SparseTensor(indices=[[0, 1], [1, 3], [1, 0]],
                              values=[1.0, 2.0, 5.0], dense_shape=[2, 4])
      out = m({"sp": value}, as_dict=True)
      self.assertIsInstance(out["doubled"], tf.SparseTensor)
      got = _run({"sum": out["default"],
                  "doubled": tf.sparse.to_dense(
                      tf.sparse.reorder(out["doubled"]))})
    self.assertAllClose(got["sum"], [1.0, 7.0])
    self.assertAllClose(got["doubled"], [[0, 2, 0, 0], [10, 0, 0, 4]])

  def test_ragged_tensor_values(self):

    def module_fn():
      rt = tf.compat.v1.ragged.placeholder(tf.float32, 1, [], name="rt")
      hub.add_signature(inputs={"rt": rt},
                        outputs={"default": tf.reduce_sum(rt, axis=1),
                                 "plus_one": rt + 1.0})

    spec = hub.create_module_spec(module_fn)
    info = spec.get_input_info_dict()["rt"]
    self.assertIsInstance(info.type_spec, tf.RaggedTensorSpec)
    self.assertFalse(info.is_sparse)
    self.assertIsInstance(spec.get_output_info_dict()["plus_one"].type_spec,
                          tf.RaggedTensorSpec)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      value = tf.RaggedTensor.from_row_splits(
          [1.0, 2.0, 3.0, 4.0], tf.constant([0, 3, 3, 4], tf.int64))
      out = m({"rt": value}, as_dict=True)
      self.assertIsInstance(out["plus_one"], tf.RaggedTensor)
      got = _run({"sum": out["default"],
                  "plus_one": out["plus_one"].flat_values,
                  "splits": out["plus_one"].row_splits})
    self.assertAllClose(got["sum"], [6.0, 0.0, 4.0])
    self.assertAllClose(got["plus_one"], [2.0, 3.0, 4.0, 5.0])
    self.assertAllEqual(got["splits"], [0, 3, 3, 4])

  def test_non_tensor_values_are_rejected(self):

    def module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
      v = tf.compat.v1.get_variable("v", [1])
      hub.add_signature(inputs={"x": x},
                        outputs={"number": 1.5, "var": v, "ok": x})

    with self.assertRaises(ValueError) as cm:
      hub.create_module_spec(module_fn)
    message = str(cm.exception)
    self.assertIn("'number'", message)
    self.assertIn("float", message)
    self.assertIn("'var'", message)
    self.assertIn("Variable", message)
    self.assertNotIn("'ok'", message)

  def test_non_tensor_input_is_rejected(self):
    # Stricter than tensorflow_hub 0.15, which fails on a list input with an
    # AttributeError from deep inside add_signature.

    def module_fn():
      hub.add_signature(inputs={"words": ["a", "b"]},
                        outputs=tf.constant(1.0))

    with self.assertRaisesRegex(ValueError, r"input 'words'.*list"):
      hub.create_module_spec(module_fn)

  def test_duplicate_signature_name(self):
    # Required by the issue; tensorflow_hub 0.15 silently keeps the last one.

    def module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [None])
      hub.add_signature("sig", inputs=x, outputs=x + 1.0)
      hub.add_signature("sig", inputs=x, outputs=x + 2.0)

    with self.assertRaisesRegex(ValueError, "sig"):
      hub.create_module_spec(module_fn)

  def test_tensor_from_another_graph(self):
    # Required by the issue; tensorflow_hub 0.15 accepts it and stores a
    # tensor name that does not exist in the module graph.
    with tf.Graph().as_default():
      foreign = tf.constant([1.0], name="foreign")

    def module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [None])
      hub.add_signature(inputs=x, outputs={"default": x, "foreign": foreign})

    with self.assertRaisesRegex(ValueError, "foreign"):
      hub.create_module_spec(module_fn)

  def test_input_with_colocation_constraint(self):

    def module_fn():
      v = tf.compat.v1.get_variable("v", [3])
      with tf.compat.v1.colocate_with(v):
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
      hub.add_signature(name="coloc", inputs={"xin": x}, outputs=x + v)

    with self.assertRaises(ValueError) as cm:
      hub.create_module_spec(module_fn)
    message = str(cm.exception)
    self.assertIn("x:0", message)
    self.assertIn("xin", message)
    self.assertIn("coloc", message)

  def test_colocating_with_an_input_is_fine(self):

    def module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
      with tf.compat.v1.colocate_with(x):
        y = tf.identity(x * 2.0, name="y")
      hub.add_signature(inputs=x, outputs=y)

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
      self.assertAllClose(_run(hub.Module(spec)([1.0, 2.0, 3.0])),
                          [2.0, 4.0, 6.0])

  def test_no_signature(self):

    def module_fn():
      tf.compat.v1.get_variable("v", [1])

    with self.assertRaisesRegex(ValueError, "(?i)signature"):
      hub.create_module_spec(module_fn)

  def test_no_signature_in_one_variant(self):

    def module_fn(add):
      x = tf.compat.v1.placeholder(tf.float32, [None])
      if add:
        hub.add_signature(inputs=x, outputs=x)

    with self.assertRaisesRegex(ValueError, "(?i)signature"):
      hub.create_module_spec(module_fn, tags_and_args=[
          (set(), {"add": True}), ({"train"}, {"add": False})])


class CollectionsTest(tf.test.TestCase):

  def _summary_module_fn(self):
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    y = x * 2.0
    tf.compat.v1.summary.scalar("mean_y", tf.reduce_mean(y))
    hub.add_signature(inputs=x, outputs=y)

  def test_unsupported_collection_is_named(self):
    with self.assertRaisesRegex(ValueError, "summaries"):
      hub.create_module_spec(self._summary_module_fn)

  def test_drop_collections(self):
    spec = hub.create_module_spec(self._summary_module_fn,
                                  drop_collections=["summaries"])
    with tf.Graph().as_default():
      y = hub.Module(spec)([1.0, 4.0])
      self.assertEmpty(tf.compat.v1.get_collection(GraphKeys.SUMMARIES))
      self.assertAllClose(_run(y), [2.0, 8.0])

  def test_drop_collections_can_drop_a_whitelisted_one(self):

    def module_fn():
      tm.linear_module_fn()
      tf.compat.v1.add_to_collection(GraphKeys.MODEL_VARIABLES,
                                     tf.compat.v1.global_variables()[0])

    kept = hub.create_module_spec(module_fn)
    dropped = hub.create_module_spec(module_fn,
                                     drop_collections=["model_variables"])
    with tf.Graph().as_default():
      hub.Module(kept)
      self.assertLen(tf.compat.v1.get_collection(GraphKeys.MODEL_VARIABLES),
                     1)
    with tf.Graph().as_default():
      hub.Module(dropped)
      self.assertEmpty(tf.compat.v1.get_collection(GraphKeys.MODEL_VARIABLES))
      self.assertLen(tf.compat.v1.global_variables(), 2)

  def test_global_step_collection_is_rejected(self):

    def module_fn():
      tf.compat.v1.train.get_or_create_global_step()
      tm.linear_module_fn()

    with self.assertRaisesRegex(ValueError, "global_step"):
      hub.create_module_spec(module_fn)


class AttachedMessageTest(tf.test.TestCase):

  def _module_fn(self, variant):
    tm.linear_module_fn()
    hub.attach_message("info", tf.compat.v1.MetaGraphDef.MetaInfoDef(
        meta_graph_version="first-%s" % variant))
    hub.attach_message("other", tf.train.Example())
    hub.attach_message("info", tf.compat.v1.MetaGraphDef.MetaInfoDef(
        meta_graph_version="last-%s" % variant))

  def _spec(self):
    return hub.create_module_spec(
        self._module_fn,
        tags_and_args=[(set(), {"variant": "eval"}),
                       ({"train"}, {"variant": "train"})])

  def test_last_value_wins_per_variant(self):
    spec = self._spec()
    info_type = tf.compat.v1.MetaGraphDef.MetaInfoDef
    self.assertEqual(
        spec.get_attached_message("info", info_type).meta_graph_version,
        "last-eval")
    self.assertEqual(
        spec.get_attached_message("info", info_type,
                                  tags={"train"}).meta_graph_version,
        "last-train")
    with tf.Graph().as_default():
      m = hub.Module(spec, tags={"train"})
      self.assertEqual(m.get_attached_message("info", info_type)
                       .meta_graph_version, "last-train")
      self.assertIsInstance(m.get_attached_message("other", tf.train.Example),
                            tf.train.Example)

  def test_missing_message(self):
    spec = self._spec()
    self.assertIsNone(spec.get_attached_message("nothing", tf.train.Example))
    with self.assertRaisesRegex(KeyError, "nothing"):
      spec.get_attached_message("nothing", tf.train.Example, required=True)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      self.assertIsNone(m.get_attached_message("nothing", tf.train.Example))
      with self.assertRaisesRegex(KeyError, "nothing"):
        m.get_attached_message("nothing", tf.train.Example, required=True)

  def test_bad_key(self):
    for key in ("1abc", "with space", "", "a-b"):

      def module_fn(key=key):
        tm.linear_module_fn()
        hub.attach_message(key, tf.train.Example())

      with self.subTest(key=key):
        with self.assertRaises(ValueError):
          hub.create_module_spec(module_fn)

  def test_messages_survive_export(self):
    spec = self._spec()
    path = os.path.join(tm.make_temp_dir(self), "m")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        m.export(path, session)
    loaded = hub.load_module_spec(path)
    self.assertEqual(
        loaded.get_attached_message(
            "info", tf.compat.v1.MetaGraphDef.MetaInfoDef,
            tags={"train"}).meta_graph_version, "last-train")


def _image_module_fn(shape, info=None, input_name="images"):

  def module_fn():
    images = tf.compat.v1.placeholder(tf.float32, shape, name="images")
    hub.add_signature(inputs={input_name: images},
                      outputs=tf.reduce_mean(images))
    if info is not None:
      hub.attach_image_module_info(info)

  return module_fn


class ImageModuleInfoTest(tf.test.TestCase):

  def test_size_from_attached_info(self):
    info = hub.ImageModuleInfo()
    info.default_image_size.height = 224
    info.default_image_size.width = 160
    spec = hub.create_module_spec(
        _image_module_fn([None, None, None, 3], info))
    self.assertEqual(hub.get_expected_image_size(spec), [224, 160])
    self.assertEqual(hub.get_num_image_channels(spec), 3)
    attached = spec.get_attached_message("image_module_info",
                                         hub.ImageModuleInfo)
    self.assertEqual(attached.default_image_size.height, 224)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      self.assertEqual(hub.get_expected_image_size(m), [224, 160])
      self.assertEqual(hub.get_num_image_channels(m), 3)

  def test_serialized_info(self):
    info = hub.ImageModuleInfo()
    info.default_image_size.height = 224
    info.default_image_size.width = 224
    self.assertEqual(info.SerializeToString(),
                     b"\x0a\x06\x08\xe0\x01\x10\xe0\x01")

  def test_size_from_input_shape(self):
    spec = hub.create_module_spec(_image_module_fn([None, 128, 96, 1]))
    self.assertEqual(hub.get_expected_image_size(spec), [128, 96])
    self.assertEqual(hub.get_num_image_channels(spec), 1)

  def test_info_with_zero_size_falls_back_to_input_shape(self):
    spec = hub.create_module_spec(
        _image_module_fn([None, 64, 32, 3], hub.ImageModuleInfo()))
    self.assertEqual(hub.get_expected_image_size(spec), [64, 32])

  def test_other_input_name_and_signature(self):

    def module_fn():
      tm.linear_module_fn()
      pixels = tf.compat.v1.placeholder(tf.float32, [None, 10, 20, 4])
      hub.add_signature("img", inputs={"pixels": pixels},
                        outputs=tf.reduce_sum(pixels))

    spec = hub.create_module_spec(module_fn)
    self.assertEqual(hub.get_expected_image_size(
        spec, signature="img", input_name="pixels"), [10, 20])
    self.assertEqual(hub.get_num_image_channels(
        spec, signature="img", input_name="pixels"), 4)

  def test_errors(self):
    unknown_size = hub.create_module_spec(
        _image_module_fn([None, None, None, 3]))
    with self.assertRaises(ValueError):
      hub.get_expected_image_size(unknown_size)
    unknown_channels = hub.create_module_spec(
        _image_module_fn([None, 8, 8, None]))
    with self.assertRaises(ValueError):
      hub.get_num_image_channels(unknown_channels)
    wrong_rank = hub.create_module_spec(_image_module_fn([None, 8, 8]))
    with self.assertRaises(ValueError):
      hub.get_expected_image_size(wrong_rank)
    with self.assertRaises(ValueError):
      hub.get_num_image_channels(wrong_rank)
    no_images = hub.create_module_spec(
        _image_module_fn([None, 8, 8, 3], input_name="pictures"))
    with self.assertRaisesRegex(ValueError, "images"):
      hub.get_expected_image_size(no_images)
    with self.assertRaisesRegex(ValueError, "images"):
      hub.get_num_image_channels(no_images)


class StateTest(tf.test.TestCase):

  def test_ref_and_resource_variables(self):
    spec = hub.create_module_spec(tm.ref_and_resource_module_fn)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      self.assertCountEqual(m.variable_map, ["ref/v", "res/v"])
      self.assertEqual(m.variable_map["ref/v"].op.type, "VariableV2")
      self.assertEqual(m.variable_map["res/v"].op.type, "VarHandleOp")
      y = m([[1.0, 1.0], [2.0, 3.0]])
      got = _run(y)
    self.assertAllClose(got, [[11.0, 22.0], [12.0, 26.0]])

  def test_module_fn_variables_are_resource_by_default(self):
    spec = hub.create_module_spec(tm.linear_module_fn)
    with tf.Graph().as_default():
      m = hub.Module(spec)
      self.assertEqual(
          sorted(v.op.type for v in m.variable_map.values()),
          ["VarHandleOp", "VarHandleOp"])

  def test_partitioned_variable(self):
    spec = hub.create_module_spec(tm.partitioned_module_fn(10, 2, 3))
    with tf.Graph().as_default():
      m = hub.Module(spec)
      self.assertEqual(list(m.variable_map), ["emb"])
      parts = m.variable_map["emb"]
      self.assertIsInstance(parts, list)
      self.assertLen(parts, 3)
      self.assertEqual([p.shape.as_list() for p in parts],
                       [[4, 2], [3, 2], [3, 2]])
      self.assertEqual([p.op.name for p in parts],
                       ["module/emb/part_0", "module/emb/part_1",
                        "module/emb/part_2"])
      self.assertEqual(m.variables, parts)
      rows = m(np.arange(10, dtype=np.int64))
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        full = tm.concat_parts(session, parts)
        got = session.run(rows)
    self.assertEqual(full.shape, (10, 2))
    self.assertAllClose(got, full)

  def test_partitioned_variable_parts_sorted_by_offset(self):
    spec = hub.create_module_spec(
        tm.partitioned_module_fn(7, 3, 4, use_resource=False))
    with tf.Graph().as_default():
      parts = hub.Module(spec).variable_map["emb"]
      offsets = [p._get_save_slice_info().var_offset[0] for p in parts]  # pylint: disable=protected-access
      self.assertEqual(offsets, sorted(offsets))
      self.assertEqual(offsets, [0, 2, 4, 6])

  def test_vocabulary_table_asset_is_copied_on_export(self):
    tmp = tm.make_temp_dir(self)
    vocab_dir = os.path.join(tmp, "src")
    tf.io.gfile.makedirs(vocab_dir)
    vocab = tm.write_vocab(vocab_dir, ["cat", "dog", "bird"])
    spec = hub.create_module_spec(tm.vocab_module_fn(vocab))
    module_path = os.path.join(tmp, "module")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      ids = m(["dog", "cow", "bird", "cat"])
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        self.assertAllEqual(session.run(ids), [1, -1, 2, 0])
        m.export(module_path, session)
    tf.io.gfile.rmtree(vocab_dir)
    self.assertEqual(tf.io.gfile.listdir(os.path.join(module_path, "assets")),
                     ["vocab.txt"])
    with tf.Graph().as_default():
      ids = hub.Module(module_path)(["bird", "cat", "emu"])
      self.assertNotEmpty(
          tf.compat.v1.get_collection(GraphKeys.TABLE_INITIALIZERS))
      self.assertAllEqual(_run(ids), [2, 0, -1])

  def _batch_norm_spec(self):
    return hub.create_module_spec(
        tm.batch_norm_module_fn,
        tags_and_args=[(set(), {"is_training": False}),
                       ({"train"}, {"is_training": True})])

  def test_trainable_module_gets_losses_and_update_ops(self):
    spec = self._batch_norm_spec()
    with tf.Graph().as_default():
      m = hub.Module(spec, trainable=True, tags={"train"})
      losses = tf.compat.v1.get_collection(GraphKeys.REGULARIZATION_LOSSES)
      self.assertLen(losses, 1)
      trainable = tf.compat.v1.trainable_variables()
      self.assertCountEqual(
          [v.op.name for v in trainable],
          ["module/dense/kernel", "module/dense/bias",
           "module/batch_normalization/gamma",
           "module/batch_normalization/beta"])
      self.assertEmpty(tf.compat.v1.get_collection(GraphKeys.UPDATE_OPS))
      x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
      y = m(x)
      update_ops = tf.compat.v1.get_collection(GraphKeys.UPDATE_OPS)
      self.assertNotEmpty(update_ops)
      moving_mean = m.variable_map["batch_normalization/moving_mean"]
      kernel = m.variable_map["dense/kernel"]
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        kernel_value = session.run(kernel)
        self.assertAllClose(session.run(losses[0]),
                            0.5 * np.sum(np.square(kernel_value)))
        self.assertAllClose(session.run(moving_mean), [0.0, 0.0])
        session.run([y, update_ops])
        bias = session.run(m.variable_map["dense/bias"])
        batch_mean = np.mean(x.dot(kernel_value) + bias, axis=0)
        # Default batch-norm momentum 0.99: one update moves 1% of the way.
        self.assertAllClose(session.run(moving_mean), 0.01 * batch_mean,
                            rtol=1e-4, atol=1e-5)

  def test_non_trainable_module_adds_none_of_it(self):
    spec = self._batch_norm_spec()
    with tf.Graph().as_default():
      m = hub.Module(spec, trainable=False, tags={"train"})
      m(np.ones([2, 3], np.float32))
      self.assertEmpty(tf.compat.v1.get_collection(
          GraphKeys.REGULARIZATION_LOSSES))
      self.assertEmpty(tf.compat.v1.trainable_variables())
      self.assertEmpty(tf.compat.v1.get_collection(GraphKeys.UPDATE_OPS))
      self.assertLen(tf.compat.v1.global_variables(), 6)

  def test_trainable_inference_variant_has_no_update_ops(self):
    spec = self._batch_norm_spec()
    with tf.Graph().as_default():
      m = hub.Module(spec, trainable=True)
      m(np.ones([2, 3], np.float32))
      self.assertLen(tf.compat.v1.get_collection(
          GraphKeys.REGULARIZATION_LOSSES), 1)
      self.assertLen(tf.compat.v1.trainable_variables(), 4)
      self.assertEmpty(tf.compat.v1.get_collection(GraphKeys.UPDATE_OPS))


if __name__ == "__main__":
  absltest.main()
