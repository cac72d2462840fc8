"""Tests of writing modules: `ModuleSpec.export` and `Module.export`.

Exports from training-style checkpoints (extra variables, name transforms,
partitioned variables), fine-tuned weights from a session, the files
written (format bytes, stored collections, checkpoint keys, assets), and
atomicity: an existing path is refused and left alone, a failed export
leaves nothing behind.
"""

import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

import hub_tf1 as hub
from hub_tf1.format import tensor_bundle
from tests import fidelity_lib
from tests import testing_modules as tm


def _read_saved_model(path):
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  return saved_model


def _checkpoint_keys(path):
  return sorted(name for name, _ in tf.train.list_variables(
      os.path.join(path, "variables", "variables")))


def _loaded_values(path, tags=None):
  """Module-relative key -> value (parts concatenated) of a loaded module."""
  with tf.Graph().as_default():
    m = hub.Module(path, tags=tags)
    with tf.compat.v1.Session() as session:
      tm.run_init(session)
      return {key: (tm.concat_parts(session, value)
                    if isinstance(value, list) else session.run(value))
              for key, value in m.variable_map.items()}


def _original_values(path):
  """What tensorflow_hub 0.15 (.venv/ref) loads from `path`, as lists.

  Module-relative key -> value (parts concatenated).
  """
  return fidelity_lib.run("""
import numpy as np
with tf.Graph().as_default():
  m = hub.Module(%r)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    emit("values", {k: (np.concatenate(session.run(v)).tolist()
                        if isinstance(v, list) else session.run(v).tolist())
                    for k, v in m.variable_map.items()})
""" % path, reference=True)["values"]


def _stored_slices(path, key, prefix=False):
  """The (start, length) ranges of the slices `key` is stored in, sorted.

  [] when the tensor is stored whole.  `path` is a module directory, or a
  checkpoint prefix when `prefix` is set.
  """
  if not prefix:
    path = os.path.join(path, "variables", "variables")
  _, index = tensor_bundle.read_index(path)
  return sorted(tuple((e.start, e.length) for e in s.extent)
                for s in index[key].slices)


def _whole_embedding_module_fn():
  ids = tf.compat.v1.placeholder(tf.int64, [None], name="ids")
  emb = tf.compat.v1.get_variable("emb", [10, 2], use_resource=True)
  hub.add_signature(inputs=ids, outputs=tf.nn.embedding_lookup(emb, ids))


def _partitioned_checkpoint(directory, num_shards):
  """A checkpoint of `emb` [10, 2] saved from `num_shards` partitions."""
  with tf.Graph().as_default():
    m = hub.Module(hub.create_module_spec(
        tm.partitioned_module_fn(10, 2, num_shards)))
    with tf.compat.v1.Session() as session:
      tm.run_init(session)
      values = tm.concat_parts(session, m.variable_map["emb"])
      prefix = tf.compat.v1.train.Saver(
          {"emb": m.variable_map["emb"]}).save(
              session, os.path.join(directory, "sliced.ckpt"))
  return prefix, values


def _write_training_checkpoint(test_case, spec, directory, steps=3):
  """Trains `spec` under tower/encoder with Adam; returns the checkpoint.

  The checkpoint also holds a global step and Adam's slots and powers.
  """
  with tf.Graph().as_default():
    with tf.compat.v1.variable_scope("tower"):
      m = hub.Module(spec, trainable=True, name="encoder")
    global_step = tf.compat.v1.train.get_or_create_global_step()
    outputs = m(np.ones([4, 2], np.float32))
    loss = tf.reduce_mean(tf.square(outputs - 1.0))
    train = tf.compat.v1.train.AdamOptimizer(0.1).minimize(
        loss, global_step=global_step)
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
      tm.run_init(session)
      for _ in range(steps):
        session.run(train)
      prefix = saver.save(session, os.path.join(directory, "model.ckpt"),
                          global_step=global_step)
  keys = [name for name, _ in tf.train.list_variables(prefix)]
  test_case.assertIn("global_step", keys)
  test_case.assertTrue(any("Adam" in k for k in keys), keys)
  return prefix


class SpecExportTest(tf.test.TestCase):

  def test_from_training_checkpoint_with_name_transform(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    checkpoint = _write_training_checkpoint(self, spec, tmp)
    path = os.path.join(tmp, "exported")
    spec.export(path, checkpoint_path=checkpoint,
                name_transform_fn=lambda name: "tower/encoder/" + name)
    self.assertEqual(_checkpoint_keys(path), ["b", "w"])
    reader = tf.train.load_checkpoint(checkpoint)
    values = _loaded_values(path)
    self.assertCountEqual(values, ["w", "b"])
    for key in ("w", "b"):
      self.assertAllClose(values[key],
                          reader.get_tensor("tower/encoder/" + key))
    # The trained values, not the initial ones.
    self.assertGreater(reader.get_tensor("global_step"), 0)
    with tf.Graph().as_default():
      fresh = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        self.assertNotAllClose(session.run(fresh.variable_map["w"]),
                               values["w"])

  def test_checkpoint_directory(self):
    # KNOWN BUG (reported): tensorflow_hub 0.15 accepts a checkpoint
    # directory (it uses init_from_checkpoint, which takes the latest
    # checkpoint there); hub_tf1 reads "<dir>.index" and fails with
    # NotFoundError.
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    checkpoint = _write_training_checkpoint(self, spec, tmp)
    path = os.path.join(tmp, "exported")
    spec.export(path, checkpoint_path=os.path.dirname(checkpoint),
                name_transform_fn=lambda name: "tower/encoder/" + name)
    reader = tf.train.load_checkpoint(checkpoint)
    self.assertAllClose(_loaded_values(path)["w"],
                        reader.get_tensor("tower/encoder/w"))

  def test_identity_transform(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    with tf.Graph().as_default():
      w = tf.compat.v1.get_variable("w", initializer=[[1.0, 2.0, 3.0],
                                                      [4.0, 5.0, 6.0]])
      b = tf.compat.v1.get_variable("b", initializer=[7.0, 8.0, 9.0])
      tf.compat.v1.get_variable("unrelated", initializer=[0.0])
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        checkpoint = tf.compat.v1.train.Saver().save(
            session, os.path.join(tmp, "ckpt"))
      del w, b
    path = os.path.join(tmp, "exported")
    spec.export(path, checkpoint_path=checkpoint)
    values = _loaded_values(path)
    self.assertAllClose(values["w"], [[1, 2, 3], [4, 5, 6]])
    self.assertAllClose(values["b"], [7, 8, 9])
    with hub.eval_function_for_module(path) as f:
      self.assertAllClose(f([[1.0, 1.0]]), [[12.0, 15.0, 18.0]])

  def test_partitioned_variable_from_checkpoint(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.partitioned_module_fn(10, 2, 3))
    with tf.Graph().as_default():
      with tf.compat.v1.variable_scope("tower"):
        m = hub.Module(spec, name="encoder")
      tf.compat.v1.train.get_or_create_global_step()
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        expected = tm.concat_parts(session, m.variable_map["emb"])
        checkpoint = tf.compat.v1.train.Saver().save(
            session, os.path.join(tmp, "ckpt"))
    path = os.path.join(tmp, "exported")
    spec.export(path, checkpoint_path=checkpoint,
                name_transform_fn=lambda name: "tower/encoder/" + name)
    self.assertEqual(_checkpoint_keys(path), ["emb"])
    # Stored in the module's own three slices, copied as the checkpoint
    # stored them.
    self.assertEqual(_stored_slices(path, "emb"),
                     [((0, 4), (0, 2)), ((4, 3), (0, 2)), ((7, 3), (0, 2))])
    self.assertAllClose(_loaded_values(path)["emb"], expected)
    with hub.eval_function_for_module(path) as f:
      self.assertAllClose(f(np.array([9, 0], np.int64)),
                          expected[[9, 0]])

  def test_checkpoint_with_other_partitioning(self):
    """Slices unlike the module's are re-read whole; values stay right."""
    tmp = tm.make_temp_dir(self)
    checkpoint, expected = _partitioned_checkpoint(tmp, num_shards=2)
    self.assertEqual(len(_stored_slices(checkpoint, "emb", prefix=True)), 2)
    for module_shards, slices in ((3, []), (1, [])):
      spec = hub.create_module_spec(
          tm.partitioned_module_fn(10, 2, module_shards))
      path = os.path.join(tmp, "exported%d" % module_shards)
      spec.export(path, checkpoint_path=checkpoint)
      self.assertEqual(_stored_slices(path, "emb"), slices)
      self.assertAllClose(_loaded_values(path)["emb"], expected)

  def test_whole_module_variable_from_sliced_checkpoint(self):
    tmp = tm.make_temp_dir(self)
    checkpoint, expected = _partitioned_checkpoint(tmp, num_shards=3)
    spec = hub.create_module_spec(_whole_embedding_module_fn)
    path = os.path.join(tmp, "exported")
    spec.export(path, checkpoint_path=checkpoint)
    self.assertEqual(_stored_slices(path, "emb"), [])
    self.assertAllClose(_loaded_values(path)["emb"], expected)

  def test_missing_checkpoint_path(self):
    spec = hub.create_module_spec(tm.linear_module_fn)
    path = os.path.join(tm.make_temp_dir(self), "exported")
    with self.assertRaisesRegex(ValueError, "checkpoint_path"):
      spec.export(path)
    with self.assertRaisesRegex(ValueError, "checkpoint_path"):
      spec.export(path, checkpoint_path="")
    self.assertFalse(tf.io.gfile.exists(path))

  def test_variable_missing_from_checkpoint(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    with tf.Graph().as_default():
      tf.compat.v1.get_variable("w", [2, 3])
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        checkpoint = tf.compat.v1.train.Saver().save(
            session, os.path.join(tmp, "ckpt"))
    path = os.path.join(tmp, "exported")
    with self.assertRaises(ValueError) as cm:
      spec.export(path, checkpoint_path=checkpoint)
    self.assertRegex(str(cm.exception), r"\bb\b")
    self.assertFalse(tf.io.gfile.exists(path))
    self.assertEqual(sorted(tf.io.gfile.listdir(tmp)),
                     sorted(["checkpoint", "ckpt.index", "ckpt.meta",
                             "ckpt.data-00000-of-00001"]))


class ModuleExportTest(tf.test.TestCase):

  def test_finetuned_weights_are_exported(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.ref_and_resource_module_fn)
    path = os.path.join(tmp, "tuned")
    with tf.Graph().as_default():
      m = hub.Module(spec, trainable=True)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        session.run([m.variable_map["ref/v"].assign([3.0, -1.0]),
                     m.variable_map["res/v"].assign([0.25, 0.5])])
        m.export(path, session)
    self.assertEqual(_checkpoint_keys(path), ["ref/v", "res/v"])
    values = _loaded_values(path)
    self.assertAllClose(values["ref/v"], [3.0, -1.0])
    self.assertAllClose(values["res/v"], [0.25, 0.5])
    with tf.Graph().as_default():
      y = hub.Module(path)([[1.0, 2.0]])
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        self.assertAllClose(session.run(y), [[3.25, -1.5]])

  def test_export_keeps_all_variants_and_reexport_round_trips(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(
        tm.batch_norm_module_fn,
        tags_and_args=[(set(), {"is_training": False}),
                       ({"train"}, {"is_training": True})])
    first = os.path.join(tmp, "first")
    with tf.Graph().as_default():
      m = hub.Module(spec, tags={"train"})
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        session.run(m.variable_map["batch_normalization/moving_mean"].assign(
            [5.0, 6.0]))
        m.export(first, session)
    loaded = hub.load_module_spec(first)
    self.assertEqual(loaded.get_tags(), [frozenset(), frozenset(["train"])])
    values = _loaded_values(first, tags={"train"})
    self.assertAllClose(values["batch_normalization/moving_mean"], [5.0, 6.0])
    second = os.path.join(tmp, "second")
    with tf.Graph().as_default():
      m = hub.Module(first)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        m.export(second, session)
    again = _loaded_values(second)
    self.assertCountEqual(again, values)
    for key in values:
      self.assertAllClose(again[key], values[key])

  def test_partitioned_variable_round_trip(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(
        tm.partitioned_module_fn(9, 4, 2, use_resource=False))
    path = os.path.join(tmp, "emb")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        expected = tm.concat_parts(session, m.variable_map["emb"])
        m.export(path, session)
    self.assertEqual(
        dict(tf.train.list_variables(
            os.path.join(path, "variables", "variables"))), {"emb": [9, 4]})
    self.assertAllClose(_loaded_values(path)["emb"], expected)

  def test_written_files(self):
    tmp = tm.make_temp_dir(self)
    vocab = tm.write_vocab(tmp, ["a", "b"], name="words.txt")

    def module_fn():
      tm.vocab_module_fn(vocab)()
      x = tf.compat.v1.placeholder(tf.float32, [None])
      v = tf.compat.v1.get_variable("v", [1])
      hub.add_signature("scaled", inputs=x, outputs=x * v)

    spec = hub.create_module_spec(module_fn)
    path = os.path.join(tmp, "module")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        m.export(path, session)
    self.assertCountEqual(tf.io.gfile.listdir(path),
                          ["tfhub_module.pb", "saved_model.pb", "variables",
                           "assets"])
    with tf.io.gfile.GFile(os.path.join(path, "tfhub_module.pb"), "rb") as f:
      self.assertEqual(f.read(), b"\x08\x03")
    self.assertEqual(tf.io.gfile.listdir(os.path.join(path, "assets")),
                     ["words.txt"])
    with tf.io.gfile.GFile(os.path.join(path, "assets", "words.txt")) as f:
      self.assertEqual(f.read(), "a\nb\n")
    self.assertEqual(_checkpoint_keys(path), ["v"])
    saved_model = _read_saved_model(path)
    self.assertLen(saved_model.meta_graphs, 1)
    meta_graph = saved_model.meta_graphs[0]
    self.assertEmpty(meta_graph.meta_info_def.tags)
    self.assertFalse(meta_graph.HasField("saver_def"))
    self.assertEmpty(meta_graph.asset_file_def)
    self.assertCountEqual(meta_graph.signature_def, ["default", "scaled"])
    collections = set(meta_graph.collection_def)
    self.assertContainsSubset(collections - {"saved_model_assets"},
                              tm.WHITELISTED_COLLECTIONS)
    self.assertIn("asset_filepaths", collections)
    assets = meta_graph.collection_def["saved_model_assets"]
    self.assertEqual(assets.WhichOneof("kind"), "any_list")
    self.assertLen(assets.any_list.value, 1)
    asset_def = meta_graph_pb2.AssetFileDef()
    self.assertTrue(assets.any_list.value[0].Unpack(asset_def))
    self.assertEqual(asset_def.filename, "words.txt")
    nodes = {n.name: n for n in meta_graph.graph_def.node}
    asset_node = nodes[asset_def.tensor_info.name.split(":")[0]]
    self.assertEqual(asset_node.op, "Const")
    # The writer's path does not leak into the stored asset constant.
    self.assertNotIn(tf.compat.as_bytes(tmp),
                     asset_node.attr["value"].tensor.string_val[0])

  def test_one_device_export_writes_a_sharded_savers_files(self):
    # With one device the Saver is not sharded (no temporary shard directory,
    # no MergeV2Checkpoints); the files must still be byte for byte those a
    # sharded Saver (as the original uses) writes.
    cases = {"ref_and_resource": tm.ref_and_resource_module_fn,
             "partitioned": tm.partitioned_module_fn()}
    for name, module_fn in cases.items():
      with self.subTest(name):
        tmp = tm.make_temp_dir(self)
        path = os.path.join(tmp, "exported")
        prefix = os.path.join(tmp, "by_saver", "variables")
        tf.io.gfile.makedirs(os.path.dirname(prefix))
        with tf.Graph().as_default():
          m = hub.Module(hub.create_module_spec(module_fn))
          with tf.compat.v1.Session() as session:
            tm.run_init(session)
            m.export(path, session)
            tf.compat.v1.train.Saver(m.variable_map, sharded=True).save(
                session, prefix, write_meta_graph=False, write_state=False)
        variables_dir = os.path.join(path, "variables")
        self.assertCountEqual(tf.io.gfile.listdir(variables_dir),
                              ["variables.index",
                               "variables.data-00000-of-00001"])
        for suffix in (".index", ".data-00000-of-00001"):
          with tf.io.gfile.GFile(os.path.join(variables_dir, "variables")
                                 + suffix, "rb") as f:
            written = f.read()
          with tf.io.gfile.GFile(prefix + suffix, "rb") as f:
            self.assertEqual(written, f.read(), suffix)

  def test_variables_on_two_devices_get_one_shard_each(self):
    tmp = tm.make_temp_dir(self)
    path = os.path.join(tmp, "exported")
    devices = iter(["/cpu:0", "/cpu:1"])

    def place_variables(op):
      if op.type in ("VariableV2", "VarHandleOp"):
        return next(devices)
      return ""

    spec = hub.create_module_spec(tm.ref_and_resource_module_fn)
    config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
    with tf.Graph().as_default() as graph:
      with graph.device(place_variables):
        m = hub.Module(spec, trainable=True)
      self.assertCountEqual([v.device for v in m.variables],
                            ["/cpu:0", "/cpu:1"])
      with tf.compat.v1.Session(config=config) as session:
        tm.run_init(session)
        session.run([m.variable_map["ref/v"].assign([3.0, -1.0]),
                     m.variable_map["res/v"].assign([0.25, 0.5])])
        m.export(path, session)
    self.assertCountEqual(
        tf.io.gfile.listdir(os.path.join(path, "variables")),
        ["variables.index", "variables.data-00000-of-00002",
         "variables.data-00001-of-00002"])
    values = _loaded_values(path)
    self.assertAllClose(values["ref/v"], [3.0, -1.0])
    self.assertAllClose(values["res/v"], [0.25, 0.5])
    fidelity_lib.skip_without_ref(self)
    # The original reads the two-shard export too.
    ref = _original_values(path)
    self.assertAllClose(ref["ref/v"], [3.0, -1.0])
    self.assertAllClose(ref["res/v"], [0.25, 0.5])

  def test_reexport_sees_sparse_updates_and_ignores_control_dependencies(self):
    # The save ops are built on the first export and reused: a second export
    # writes the values at that time, also of a resource variable put in
    # copy-on-read mode by a sparse update (partitioned and ref variables
    # too); a (first) export inside the caller's control dependencies does
    # not run them.
    tmp = tm.make_temp_dir(self)

    def module_fn():
      ids = tf.compat.v1.placeholder(tf.int64, [None], name="ids")
      with tf.compat.v1.variable_scope("ref", use_resource=False):
        tf.compat.v1.get_variable("v", initializer=tf.constant([1.0, 2.0]))
      with tf.compat.v1.variable_scope("res", use_resource=True):
        tf.compat.v1.get_variable("v", initializer=tf.constant([10.0, 20.0]))
      emb = tf.compat.v1.get_variable(
          "emb", [6, 2], use_resource=True,
          initializer=tf.compat.v1.random_normal_initializer(seed=3),
          partitioner=tf.compat.v1.fixed_size_partitioner(2))
      hub.add_signature(inputs=ids, outputs=tf.nn.embedding_lookup(emb, ids))

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
      m = hub.Module(spec, trainable=True)
      counter = tf.compat.v1.get_variable(
          "counter", initializer=0, use_resource=True)
      bump = counter.assign_add(1)
      parts = m.variable_map["emb"]
      updates = [m.variable_map["res/v"].scatter_update(
          tf.IndexedSlices(tf.constant([7.0]), tf.constant([1]))),
                 m.variable_map["ref/v"].assign([-2.0, -3.0]),
                 parts[1].scatter_update(tf.IndexedSlices(
                     tf.constant([[8.0, 9.0]]), tf.constant([0])))]
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        with tf.control_dependencies([bump]):
          m.export(os.path.join(tmp, "first"), session)
        first = session.run(m.variable_map)
        session.run(updates)
        m.export(os.path.join(tmp, "second"), session)
        second = session.run(m.variable_map)
        self.assertEqual(session.run(counter), 0)
    self.assertAllClose(second["res/v"], [10.0, 7.0])
    self.assertAllClose(second["ref/v"], [-2.0, -3.0])
    self.assertAllClose(second["emb"][1][0], [8.0, 9.0])
    for name, expected in (("first", first), ("second", second)):
      values = _loaded_values(os.path.join(tmp, name))
      for key in ("ref/v", "res/v"):
        self.assertAllClose(values[key], expected[key], msg=(name, key))
      self.assertAllClose(values["emb"], np.concatenate(expected["emb"]),
                          msg=name)
    fidelity_lib.skip_without_ref(self)
    # The original reads the one-SaveV2 export too.
    ref = _original_values(os.path.join(tmp, "second"))
    self.assertAllClose(ref["ref/v"], second["ref/v"])
    self.assertAllClose(ref["res/v"], second["res/v"])
    self.assertAllClose(ref["emb"], np.concatenate(second["emb"]))

  def test_module_without_variables(self):
    tmp = tm.make_temp_dir(self)

    def module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [None])
      hub.add_signature(inputs=x, outputs=x + 1.0)

    path = os.path.join(tmp, "plain")
    with tf.Graph().as_default():
      m = hub.Module(hub.create_module_spec(module_fn))
      with tf.compat.v1.Session() as session:
        m.export(path, session)
    self.assertTrue(tf.io.gfile.isdir(os.path.join(path, "variables")))
    with hub.eval_function_for_module(path) as f:
      self.assertAllClose(f([1.0, 2.0]), [2.0, 3.0])

  def test_existing_path_is_refused_and_untouched(self):
    # The issue asks for atomic exports; tensorflow_hub 0.15 raises too, but
    # only after overwriting variables/ and saved_model.pb.
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    path = os.path.join(tmp, "module")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        m.export(path, session)
        before = tm.dir_snapshot(path)
        session.run(m.variable_map["w"].assign(tf.zeros([2, 3])))
        with self.assertRaises(tf.errors.AlreadyExistsError):
          m.export(path, session)
    self.assertEqual(tm.dir_snapshot(path), before)
    self.assertEqual(tf.io.gfile.listdir(tmp), ["module"])

  def test_export_into_existing_empty_directory(self):
    # `module.export(tempfile.mkdtemp(), session)` worked with the original.
    tmp = tm.make_temp_dir(self)
    path = os.path.join(tmp, "made_by_mkdtemp")
    tf.io.gfile.makedirs(path)
    with tf.Graph().as_default():
      m = hub.Module(hub.create_module_spec(tm.linear_module_fn))
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        m.export(path, session)
    self.assertIn("tfhub_module.pb", tf.io.gfile.listdir(path))
    self.assertEqual(tf.io.gfile.listdir(tmp), ["made_by_mkdtemp"])
    hub.load_module_spec(path)

  def test_failed_export_leaves_nothing(self):
    # The issue asks for atomic exports; tensorflow_hub 0.15 leaves a partial
    # directory at `path`.
    tmp = tm.make_temp_dir(self)
    source_dir = os.path.join(tmp, "src")
    tf.io.gfile.makedirs(source_dir)
    vocab = tm.write_vocab(source_dir, ["x", "y"])
    spec = hub.create_module_spec(tm.vocab_module_fn(vocab))
    out_dir = os.path.join(tmp, "out")
    tf.io.gfile.makedirs(out_dir)
    path = os.path.join(out_dir, "module")
    with tf.Graph().as_default():
      m = hub.Module(spec)
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        tf.io.gfile.remove(vocab)
        with self.assertRaises(tf.errors.NotFoundError):
          m.export(path, session)
    self.assertFalse(tf.io.gfile.exists(path))
    self.assertEqual(tf.io.gfile.listdir(out_dir), [])

  def test_export_needs_the_module_graph_and_session(self):
    tmp = tm.make_temp_dir(self)
    spec = hub.create_module_spec(tm.linear_module_fn)
    with tf.Graph().as_default():
      m = hub.Module(spec)
    with tf.Graph().as_default():
      with tf.compat.v1.Session() as session:
        with self.assertRaises(RuntimeError):
          m.export(os.path.join(tmp, "a"), session)
    self.assertEqual(tf.io.gfile.listdir(tmp), [])


class FinalizedGraphExportTest(fidelity_lib.BothRunsTestCase):
  """Module.export after the graph is finalized, as a MonitoredSession does.

  tensorflow_hub 0.15 builds its Saver with the Module, so the export adds
  no ops; hub_tf1 used to build its writer on the first export and failed
  there with "Graph is finalized".  Both writers of hub_tf1 are run: SaveV2
  (a small module) and the streaming one (its thresholds lowered).
  """

  SNIPPET = r"""
if hub.__name__ == "hub_tf1":
  from hub_tf1.module import variable_writer
  variable_writer._STREAM_MIN_BYTES = 64

def module_fn(rows):
  def fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2])
    w = tf.compat.v1.get_variable(
        "w", initializer=tf.reshape(tf.range(rows * 2.0), [rows, 2]))
    hub.add_signature(inputs=x, outputs=tf.matmul(x, w, transpose_b=True))
  return fn

for rows in (2, 100):
  with tf.Graph().as_default() as g:
    m = hub.Module(hub.create_module_spec(module_fn(rows)))
    step = tf.compat.v1.train.get_or_create_global_step()
    grow = tf.compat.v1.assign_add(m.variable_map["w"], tf.ones([rows, 2]))
    out = os.path.join(TMP, "out_%d" % rows)
    with tf.compat.v1.train.SingularMonitoredSession() as s:
      emit("finalized_%d" % rows, g.finalized)
      s.run(grow)
      m.export(out, s.raw_session())
  reader = tf.train.load_checkpoint(os.path.join(out, "variables", "variables"))
  emit("w_%d" % rows, reader.get_tensor("w").tolist())
"""

  def test_export_after_finalize(self):
    original, ours = self.results()
    self.assertEqual(original, ours)
    self.assertTrue(ours["finalized_100"])
    self.assertEqual(ours["w_2"], [[1.0, 2.0], [3.0, 4.0]])


class FinalizedGraphTwoDeviceExportTest(fidelity_lib.BothRunsTestCase):
  """The same with the variables on two devices: one data file each.

  hub_tf1 used to build a Saver for such variables on the first export (a
  Saver built earlier puts its restore ops on the variables' devices), so
  a finalized graph could not be exported.
  """

  SNIPPET = r"""
devices = iter(["/cpu:0", "/cpu:1"])

def place_variables(op):
  if op.type in ("VariableV2", "VarHandleOp"):
    return next(devices)
  return ""

def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 2])
  with tf.compat.v1.variable_scope("ref", use_resource=False):
    a = tf.compat.v1.get_variable("a", initializer=[[1.0, 2.0], [3.0, 4.0]])
  with tf.compat.v1.variable_scope("res", use_resource=True):
    b = tf.compat.v1.get_variable("b", initializer=[10.0, 20.0])
  hub.add_signature(inputs=x, outputs=tf.matmul(x, a) + b)

config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
with tf.Graph().as_default() as g:
  with g.device(place_variables):
    m = hub.Module(hub.create_module_spec(module_fn), trainable=True)
  emit("devices", sorted(v.device for v in m.variables))
  step = tf.compat.v1.train.get_or_create_global_step()
  grow = [tf.compat.v1.assign_add(v, tf.ones_like(v)) for v in m.variables]
  out = os.path.join(TMP, "out")
  with tf.compat.v1.train.SingularMonitoredSession(config=config) as s:
    emit("finalized", g.finalized)
    s.run(grow)
    m.export(out, s.raw_session())
emit("files", sorted(os.listdir(os.path.join(out, "variables"))))
reader = tf.train.load_checkpoint(os.path.join(out, "variables", "variables"))
emit("values", {k: reader.get_tensor(k).tolist()
                for k in sorted(reader.get_variable_to_shape_map())})
"""

  def test_export_after_finalize(self):
    original, ours = self.results()
    self.assertEqual(original, ours)
    self.assertTrue(ours["finalized"])
    self.assertEqual(ours["files"], ["variables.data-00000-of-00002",
                                     "variables.data-00001-of-00002",
                                     "variables.index"])
    self.assertEqual(ours["values"], {"ref/a": [[2.0, 3.0], [4.0, 5.0]],
                                      "res/b": [11.0, 21.0]})


if __name__ == "__main__":
  absltest.main()
