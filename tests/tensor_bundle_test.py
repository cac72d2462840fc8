"""Tests for hub_tf1.format.tensor_bundle (checkpoint index reader/writer).

Checkpoints are written by TensorFlow itself (Saver, SaveV2 +
MergeV2Checkpoints, tf.train.Checkpoint) and what this module writes is read
back with TensorFlow's own readers (CheckpointReader, RestoreV2,
init_from_checkpoint) and by tensorflow_hub 0.15, which runs in a subprocess
with the interpreter of .venv/ref (those cases skip only when that virtualenv
does not exist).  Also covers bundle_copy: the streaming copy and its plan.
"""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_slice_pb2
from tensorflow.core.framework import types_pb2

from hub_tf1.format import _sstable
from hub_tf1.format import bundle_copy
from hub_tf1.format import tensor_bundle
from tests import fidelity_lib


def _save_v2(prefix, tensors):
  """Writes `tensors` (name -> value) as a single-shard checkpoint."""
  names = sorted(tensors)
  tf.raw_ops.SaveV2(
      prefix=prefix,
      tensor_names=names,
      shape_and_slices=[""] * len(names),
      tensors=[tf.constant(tensors[n]) for n in names])


def _save_sharded(prefix, shards):
  """Writes a checkpoint with one data shard per dict in `shards`."""
  tmp_dir = prefix + "_temp"
  tf.io.gfile.makedirs(tmp_dir)
  parts = []
  for i, tensors in enumerate(shards):
    part = os.path.join(tmp_dir, "part-%05d-of-%05d" % (i, len(shards)))
    _save_v2(part, tensors)
    parts.append(part)
  tf.raw_ops.MergeV2Checkpoints(
      checkpoint_prefixes=parts, destination_prefix=prefix,
      delete_old_dirs=True)


def _save_with_saver(prefix, partitioned=False):
  """Writes a checkpoint of a few variables with tf.compat.v1.train.Saver.

  The variables live on two CPU devices, so the sharded saver writes two data
  shards.
  """
  tf.io.gfile.makedirs(os.path.dirname(prefix))
  graph = tf.Graph()
  with graph.as_default():
    with tf.device("/cpu:0"):
      tf.compat.v1.get_variable(
          "w", initializer=np.arange(6, dtype=np.float32).reshape(2, 3))
    with tf.device("/cpu:1"):
      tf.compat.v1.get_variable("step", initializer=np.int64(42))
    if partitioned:
      tf.compat.v1.get_variable(
          "part", shape=[10, 2],
          initializer=tf.compat.v1.random_uniform_initializer(),
          partitioner=tf.compat.v1.fixed_size_partitioner(2))
    saver = tf.compat.v1.train.Saver(sharded=True)
    config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return saver.save(sess, prefix, write_meta_graph=False,
                        write_state=False)


def _read_file(path):
  with tf.io.gfile.GFile(path, "rb") as f:
    return f.read()


def _write_file(path, data):
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


_VALUES = {
    "float_matrix": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "scalar_int64": np.int64(-(2**40)),
    "bools": np.array([True, False, True]),
    "strings": np.array(
        [b"hello", b"", "w\xf6rld".encode("utf-8"), b"\x00\xff"]),
    "scalar_string": np.array(b"just one"),
    "empty": np.zeros([0, 3], np.float32),
    "int32_cube": np.arange(24, dtype=np.int32).reshape(2, 3, 4),
    "doubles": np.linspace(0, 1, 5),
    # ~2 MB, copied with a small chunk size below to exercise chunking.
    "big": np.random.RandomState(0).randn(512, 1024).astype(np.float32),
}


class TensorBundleTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))

  def tearDown(self):
    tf.io.gfile.rmtree(self.dir)
    super().tearDown()

  def path(self, *parts):
    return os.path.join(self.dir, *parts)

  def assertCheckpointHas(self, prefix, expected):
    """Checks keys, dtypes and values with TF's CheckpointReader."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    self.assertCountEqual(dtypes.keys(), expected.keys())
    for key, value in expected.items():
      got = reader.get_tensor(key)
      self.assertEqual(dtypes[key], tf.constant(value).dtype, key)
      self.assertAllEqual(got, value, msg=key)

  # --- crc32c and table encoding ---------------------------------------------

  def test_crc32c_known_values(self):
    # RFC 3720 (iSCSI) test vectors for CRC-32C.
    self.assertEqual(tensor_bundle.crc32c(b"123456789"), 0xe3069283)
    self.assertEqual(tensor_bundle.crc32c(bytes(32)), 0x8a9136aa)
    self.assertEqual(tensor_bundle.crc32c(b"\xff" * 32), 0x62a8ab43)
    self.assertEqual(tensor_bundle.crc32c(b"6789", tensor_bundle.crc32c(
        b"12345")), 0xe3069283)
    for crc in (0, 1, 0xe3069283, 0xffffffff):
      self.assertEqual(
          tensor_bundle.unmask_crc(tensor_bundle.mask_crc(crc)), crc)

  def test_read_index_of_saver_checkpoint(self):
    prefix = _save_with_saver(self.path("saver", "model"), partitioned=True)
    header, entries = tensor_bundle.read_index(prefix)
    self.assertGreaterEqual(header.num_shards, 2)
    self.assertNotEqual(entries["w"].shard_id, entries["step"].shard_id)
    self.assertEqual(header.endianness, header.LITTLE)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    self.assertCountEqual(entries.keys(), shapes.keys())
    for key, entry in entries.items():
      self.assertEqual([d.size for d in entry.shape.dim], shapes[key], key)
      self.assertEqual(entry.dtype, dtypes[key].as_datatype_enum, key)
    self.assertLen(entries["part"].slices, 2)
    self.assertEmpty(entries["w"].slices)
    _, with_slices = tensor_bundle.read_index(prefix, include_slice_keys=True)
    slice_keys = [k for k in with_slices if isinstance(k, bytes)]
    self.assertLen(slice_keys, 2)
    self.assertTrue(all(k.startswith(b"\x00") for k in slice_keys))

  def test_reencoded_index_is_byte_identical(self):
    prefix = _save_with_saver(self.path("saver", "model"), partitioned=True)
    header, entries = tensor_bundle.read_index(prefix, include_slice_keys=True)
    self.assertEqual(
        tensor_bundle.encode_index(header, entries),
        _read_file(prefix + ".index"))

  def test_multi_block_index_written_by_tensorflow(self):
    # ~12k keys make an index larger than one 256 KiB block.
    names = {"layer_%05d/a/fairly/long/name/kernel" % i: np.float32(i)
             for i in range(12000)}
    prefix = self.path("many", "ckpt")
    _save_v2(prefix, names)
    data = _read_file(prefix + ".index")
    self.assertGreater(len(data), 2 * tensor_bundle.DEFAULT_BLOCK_SIZE)
    header, entries = tensor_bundle.read_index(prefix)
    self.assertCountEqual(entries.keys(), names.keys())
    self.assertEqual(tensor_bundle.encode_index(header, entries), data)

  def test_multi_block_index_written_by_us_is_read_by_tensorflow(self):
    src = self.path("src", "ckpt")
    values = {"v%03d" % i: np.full([i % 5 + 1], i, np.int64)
              for i in range(300)}
    _save_v2(src, values)
    header, entries = tensor_bundle.read_index(src)
    tf.io.gfile.copy(src + ".data-00000-of-00001",
                     self.path("src", "copy.data-00000-of-00001"))
    dst = self.path("src", "copy")
    tensor_bundle.write_index(dst, header, entries, block_size=200,
                              restart_interval=3)
    table = _read_file(dst + ".index")
    index_entries = _index_block_entries(table)
    self.assertGreater(len(index_entries), 10)
    self.assertCheckpointHas(dst, values)
    self.assertEqual(dict(tensor_bundle.read_index(dst)[1]), entries)

  def test_reads_object_based_checkpoint(self):
    ckpt = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0]),
                               inner={"x": tf.Variable(3)})
    prefix = ckpt.write(self.path("obj", "ckpt"))
    _, entries = tensor_bundle.read_index(prefix)
    self.assertCountEqual(entries.keys(), [
        "_CHECKPOINTABLE_OBJECT_GRAPH", "v/.ATTRIBUTES/VARIABLE_VALUE",
        "inner/x/.ATTRIBUTES/VARIABLE_VALUE"])
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(prefix, dst,
                             {"v": "v/.ATTRIBUTES/VARIABLE_VALUE"})
    self.assertCheckpointHas(dst, {"v": np.array([1.0, 2.0], np.float32)})

  # --- copy_tensors ----------------------------------------------------------

  def test_copy_round_trip_all_dtypes_with_renaming(self):
    src = self.path("train", "ckpt")
    _save_v2(src, dict(_VALUES, **{"optimizer/slot": np.ones([7], np.float32)}))
    key_map = {"module/" + k: k for k in _VALUES}
    dst = self.path("module", "variables", "variables")
    entries = bundle_copy.copy_tensors(src, dst, key_map,
                                       chunk_size=100_000)
    self.assertCountEqual(entries.keys(), key_map.keys())
    self.assertCheckpointHas(dst,
                             {"module/" + k: v for k, v in _VALUES.items()})
    self.assertCountEqual(
        tf.io.gfile.listdir(self.path("module", "variables")),
        ["variables.data-00000-of-00001", "variables.index"])
    # The data file holds exactly the selected tensors, nothing else.
    src_entries = tensor_bundle.read_index(src)[1]
    self.assertEqual(
        tf.io.gfile.stat(dst + ".data-00000-of-00001").length,
        sum(src_entries[k].size for k in _VALUES))

  def test_copy_is_restorable_with_restore_v2(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, {"s": "strings", "m": "float_matrix",
                                        "z": "scalar_int64"})
    s, m, z = tf.raw_ops.RestoreV2(
        prefix=dst, tensor_names=["s", "m", "z"], shape_and_slices=["", "", ""],
        dtypes=[tf.string, tf.float32, tf.int64])
    self.assertAllEqual(s, _VALUES["strings"])
    self.assertAllEqual(m, _VALUES["float_matrix"])
    self.assertAllEqual(z, _VALUES["scalar_int64"])

  def test_copy_into_graph_variables_with_init_from_checkpoint(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, {"w": "float_matrix", "b": "bools"})
    with tf.Graph().as_default() as graph:
      w = tf.compat.v1.get_variable("scope/w", shape=[3, 4])
      b = tf.compat.v1.get_variable("scope/b", shape=[3], dtype=tf.bool)
      tf.compat.v1.train.init_from_checkpoint(dst, {"w": w, "b": b})
      with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        w_value, b_value = sess.run([w, b])
    self.assertAllEqual(w_value, _VALUES["float_matrix"])
    self.assertAllEqual(b_value, _VALUES["bools"])

  def test_copy_from_several_shards(self):
    shards = [
        {"a": np.arange(5, dtype=np.int64), "s0": np.array(b"zero")},
        {"b": np.ones([2, 2], np.float32), "s1": np.array([b"x", b"yy"])},
        {"c": np.array(True), "d": np.float64(2.5)},
    ]
    src = self.path("sharded", "ckpt")
    _save_sharded(src, shards)
    header, src_entries = tensor_bundle.read_index(src)
    self.assertEqual(header.num_shards, 3)
    self.assertEqual(sorted({e.shard_id for e in src_entries.values()}),
                     [0, 1, 2])
    everything = {k: v for shard in shards for k, v in shard.items()}
    key_map = {"new_" + k: k for k in everything}
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, key_map)
    self.assertEqual(tensor_bundle.read_index(dst)[0].num_shards, 1)
    self.assertCheckpointHas(dst,
                             {"new_" + k: v for k, v in everything.items()})

  def test_one_source_tensor_under_two_names_is_stored_once(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    entries = bundle_copy.copy_tensors(src, dst,
                                       {"x": "big", "y": "big", "z": "bools"})
    self.assertEqual(entries["x"].offset, entries["y"].offset)
    self.assertEqual(
        tf.io.gfile.stat(dst + ".data-00000-of-00001").length,
        _VALUES["big"].nbytes + _VALUES["bools"].nbytes)
    self.assertCheckpointHas(dst, {"x": _VALUES["big"], "y": _VALUES["big"],
                                   "z": _VALUES["bools"]})

  def test_copy_overwrites_previous_output_and_leaves_no_temp_files(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, {"x": "big"})
    bundle_copy.copy_tensors(src, dst, {"x": "doubles"})
    self.assertCountEqual(tf.io.gfile.listdir(self.path("out")),
                          ["vars.index", "vars.data-00000-of-00001"])
    self.assertCheckpointHas(dst, {"x": _VALUES["doubles"]})

  def test_missing_key_is_named(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    with self.assertRaisesRegex(tensor_bundle.MissingTensorError,
                                "'no/such/var'") as cm:
      bundle_copy.copy_tensors(src, dst, {"a": "big", "b": "no/such/var"})
    self.assertEqual(cm.exception.key, "no/such/var")
    self.assertIsInstance(cm.exception, ValueError)
    self.assertFalse(tf.io.gfile.exists(self.path("out")))

  def test_sliced_key_is_rejected(self):
    prefix = _save_with_saver(self.path("saver", "model"), partitioned=True)
    dst = self.path("out", "vars")
    with self.assertRaisesRegex(tensor_bundle.SlicedTensorError,
                                "'part'.*partitioned") as cm:
      bundle_copy.copy_tensors(prefix, dst, {"w": "w", "p": "part"})
    self.assertEqual(cm.exception.key, "part")
    # The unpartitioned variables still copy.
    bundle_copy.copy_tensors(prefix, dst, {"w": "w", "s": "step"})
    self.assertCheckpointHas(dst, {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.int64(42)})

  def test_slice_keys_split_and_rebuild(self):
    prefix = _save_with_saver(self.path("saver", "model"), partitioned=True)
    _, entries = tensor_bundle.read_index(prefix, include_slice_keys=True)
    slice_keys = [k for k in entries if isinstance(k, bytes)]
    self.assertLen(slice_keys, 2)
    suffixes = set()
    for key in slice_keys:
      name, encoded_slice = tensor_bundle.split_slice_key(key)
      self.assertEqual(name, "part")
      self.assertEqual(tensor_bundle.make_slice_key(name, encoded_slice), key)
      suffixes.add(encoded_slice)
    self.assertLen(suffixes, 2)
    renamed = tensor_bundle.make_slice_key("a/b", b"\x01\x02\x80\x85")
    self.assertEqual(tensor_bundle.split_slice_key(renamed),
                     ("a/b", b"\x01\x02\x80\x85"))
    with self.assertRaises(tensor_bundle.CorruptIndexError):
      tensor_bundle.split_slice_key(b"\x00part-without-terminator")

  def test_copy_slices_keeps_partitioned_tensor_restorable(self):
    src = _save_with_saver(self.path("saver", "model"), partitioned=True)
    part_value = tf.train.load_checkpoint(src).get_tensor("part")
    dst = self.path("out", "vars")
    entries = bundle_copy.copy_tensors(
        src, dst, {"module/emb": "part", "w": "w"}, copy_slices=True)
    self.assertLen(entries["module/emb"].slices, 2)
    self.assertCheckpointHas(dst, {
        "module/emb": part_value,
        "w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    _, written = tensor_bundle.read_index(dst, include_slice_keys=True)
    self.assertCountEqual(
        {tensor_bundle.split_slice_key(k)[0] for k in written
         if isinstance(k, bytes)}, ["module/emb"])
    # Into the same partitioning and into another one.
    for partitions in (2, 5):
      with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable(
            "emb", shape=[10, 2],
            partitioner=tf.compat.v1.fixed_size_partitioner(partitions))
        tf.compat.v1.train.init_from_checkpoint(dst, {"module/emb": "emb"})
        with tf.compat.v1.Session(graph=graph) as sess:
          sess.run(tf.compat.v1.global_variables_initializer())
          got = sess.run(var.as_tensor())
      self.assertAllEqual(got, part_value, msg="%d partitions" % partitions)

  def test_expected_dtype_and_shape(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(
        src, dst, {"m": "float_matrix", "s": "strings"},
        expected={"m": (tf.float32, [3, None]), "s": (tf.string, None)})
    with self.assertRaisesRegex(tensor_bundle.TensorMismatchError,
                                "'m'.*dtype DT_FLOAT.*DT_INT32"):
      bundle_copy.copy_tensors(src, dst, {"m": "float_matrix"},
                               expected={"m": (tf.int32, None)})
    with self.assertRaisesRegex(tensor_bundle.TensorMismatchError,
                                r"'m'.*shape \[3, 4\].*\[4, 3\]"):
      bundle_copy.copy_tensors(src, dst, {"m": "float_matrix"},
                               expected={"m": (None, [4, 3])})

  def test_refuses_to_overwrite_its_source(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    with self.assertRaisesRegex(ValueError, "cannot write over its source"):
      bundle_copy.copy_tensors(src, src, {"x": "big"})
    self.assertCheckpointHas(src, _VALUES)

  def test_truncated_source_shard_raises_data_loss(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    data_file = src + ".data-00000-of-00001"
    _write_file(data_file, _read_file(data_file)[:1000])
    with self.assertRaises(tf.errors.DataLossError):
      bundle_copy.copy_tensors(src, self.path("out", "vars"), {"x": "big"})

  # --- corruption ------------------------------------------------------------

  def test_flipped_index_byte_is_detected_by_tensorflow(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, {"some_key": "float_matrix"})
    index = bytearray(_read_file(dst + ".index"))
    pos = bytes(index).find(b"some_key")
    self.assertGreater(pos, 0)
    index[pos] ^= 0x01  # In the data block: its checksum no longer matches.
    _write_file(dst + ".index", bytes(index))
    with self.assertRaisesRegex(tf.errors.DataLossError, "checksum"):
      tf.raw_ops.RestoreV2(prefix=dst, tensor_names=["some_key"],
                           shape_and_slices=[""], dtypes=[tf.float32])
    with self.assertRaisesRegex(tensor_bundle.CorruptIndexError, "checksum"):
      tensor_bundle.read_index(dst)

  def test_flipped_data_byte_is_detected_by_tensorflow(self):
    src = self.path("train", "ckpt")
    _save_v2(src, _VALUES)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, {"m": "float_matrix"})
    data_file = dst + ".data-00000-of-00001"
    data = bytearray(_read_file(data_file))
    data[5] ^= 0x10
    _write_file(data_file, bytes(data))
    with self.assertRaises(tf.errors.DataLossError):
      tf.raw_ops.RestoreV2(prefix=dst, tensor_names=["m"],
                           shape_and_slices=[""], dtypes=[tf.float32])

  def test_bad_magic_is_rejected(self):
    src = self.path("train", "ckpt")
    _save_v2(src, {"a": np.float32(1)})
    data = bytearray(_read_file(src + ".index"))
    data[-1] ^= 0xff
    _write_file(src + ".index", bytes(data))
    with self.assertRaisesRegex(tensor_bundle.CorruptIndexError, "magic"):
      tensor_bundle.read_index(src)

  # --- bundle_copy.plan_copy ------------------------------------------------

  def test_plan_orders_merges_and_dedupes_source_ranges(self):
    # Two source shards; the new file takes source bytes in (shard, offset)
    # order, touching ranges are read as one run, duplicates stored once.
    src = {
        "a": _entry(1, 0, 8, crc=11),
        "b": _entry(0, 16, 4, crc=12),
        "c": _entry(0, 0, 16, crc=13),
        "d": _entry(0, 40, 4, crc=14),  # A gap before it: a run of its own.
        "e": _entry(1, 8, 2, crc=15),
        "unused": _entry(0, 20, 20),
    }
    key_map = {"x": "a", "y": "b", "z": "c", "w": "d", "v": "e", "u": "c"}
    plan = bundle_copy.plan_copy(_header(2), src, key_map,
                                 src_prefix="/no/such/ckpt")
    self.assertEqual([(r.shard, r.offset, r.size) for r in plan.runs],
                     [(0, 0, 20), (0, 40, 4), (1, 0, 10)])
    self.assertEqual(plan.num_bytes, 34)
    self.assertEqual(plan.num_src_shards, 2)
    self.assertEqual(plan.header.num_shards, 1)
    self.assertEqual(
        {k: (e.shard_id, e.offset, e.size, e.crc32c)
         for k, e in plan.entries.items()},
        {"z": (0, 0, 16, 13), "u": (0, 0, 16, 13), "y": (0, 16, 4, 12),
         "w": (0, 20, 4, 14), "x": (0, 24, 8, 11), "v": (0, 32, 2, 15)})
    # The source index is left as it was.
    self.assertEqual((src["a"].shard_id, src["a"].offset), (1, 0))

  def test_plan_rekeys_slices_under_the_new_name(self):
    slice_a, slice_b = b"\x02\x00\x05", b"\x02\x05\x05"
    src = {
        "p": _entry(0, 0, 0, shape=(10, 2), slices=2),
        tensor_bundle.make_slice_key("p", slice_b): _entry(0, 40, 40),
        tensor_bundle.make_slice_key("p", slice_a): _entry(0, 0, 40),
        "w": _entry(0, 80, 4),
    }
    plan = bundle_copy.plan_copy(_header(1), src, {"m/p": "p", "w": "w"},
                                 copy_slices=True)
    self.assertEqual(
        {k: (e.shard_id, e.offset, e.size, len(e.slices))
         for k, e in plan.entries.items()},
        {"m/p": (0, 0, 0, 2), "w": (0, 80, 4, 0),
         tensor_bundle.make_slice_key("m/p", slice_a): (0, 0, 40, 0),
         tensor_bundle.make_slice_key("m/p", slice_b): (0, 40, 40, 0)})
    self.assertEqual([(r.shard, r.offset, r.size) for r in plan.runs],
                     [(0, 0, 84)])
    self.assertEqual(plan.entries["m/p"].shape.dim[0].size, 10)
    with self.assertRaises(tensor_bundle.SlicedTensorError):
      bundle_copy.plan_copy(_header(1), src, {"m/p": "p"})
    del src[tensor_bundle.make_slice_key("p", slice_b)]
    with self.assertRaisesRegex(tensor_bundle.CorruptIndexError,
                                "lists 2 slices but 1 are stored"):
      bundle_copy.plan_copy(_header(1), src, {"m/p": "p"}, copy_slices=True)

  def test_plan_rejects_missing_and_mismatched_tensors(self):
    src = {"a": _entry(0, 0, 24, shape=(2, 3))}
    with self.assertRaisesRegex(tensor_bundle.MissingTensorError,
                                "'b'.*/ckpt") as cm:
      bundle_copy.plan_copy(_header(1), src, {"x": "a", "y": "b"},
                            src_prefix="/ckpt")
    self.assertEqual(cm.exception.key, "b")
    with self.assertRaisesRegex(tensor_bundle.TensorMismatchError,
                                r"'x'.*\[2, 3\].*\[3, 2\]"):
      bundle_copy.plan_copy(_header(1), src, {"x": "a"},
                            expected={"x": (None, [3, 2])})
    with self.assertRaisesRegex(tensor_bundle.TensorMismatchError, "DT_INT64"):
      bundle_copy.plan_copy(_header(1), src, {"x": "a"},
                            expected={"x": (tf.int64, None)})
    plan = bundle_copy.plan_copy(_header(1), src, {"x": "a"},
                                 expected={"x": (tf.float32, [None, 3])})
    self.assertEqual(plan.num_bytes, 24)

  def test_written_copy_is_exactly_the_plan(self):
    shards = [
        {"a": np.arange(5, dtype=np.int64), "s0": np.array(b"zero")},
        {"b": np.ones([2, 2], np.float32), "c": np.array(True)},
    ]
    src = self.path("sharded", "ckpt")
    _save_sharded(src, shards)
    key_map = {"n_a": "a", "n_b": "b", "n_c": "c", "again_a": "a"}
    header, src_entries = tensor_bundle.read_index(src)
    plan = bundle_copy.plan_copy(header, src_entries, key_map)
    dst = self.path("out", "vars")
    bundle_copy.copy_tensors(src, dst, key_map, chunk_size=3)
    expected_data = b"".join(
        _read_file(tensor_bundle.data_path(src, r.shard, 2))[
            r.offset:r.offset + r.size] for r in plan.runs)
    self.assertEqual(_read_file(dst + ".data-00000-of-00001"), expected_data)
    written_header, written = tensor_bundle.read_index(dst)
    self.assertEqual(written, plan.entries)
    self.assertEqual(written_header, plan.header)

  # --- tensorflow_hub 0.15 interop (subprocess in .venv/ref) ---------------

  def run_ref(self, code):
    """Runs `code` with the original tensorflow_hub; returns what it emits."""
    fidelity_lib.skip_without_ref(self)
    return fidelity_lib.run(code, reference=True, tmp_base=self.dir)

  def test_module_with_copied_variables_loads_in_tensorflow_hub(self):
    fidelity_lib.skip_without_ref(self)
    train = self.path("train", "ckpt")
    w_value = np.arange(6, dtype=np.float32).reshape(3, 2)
    b_value = np.array([0.5, -1.0], np.float32)
    _save_v2(train, {"model/w": w_value, "model/b": b_value,
                     "model/w/Adam": np.zeros([3, 2], np.float32),
                     "global_step": np.int64(100)})
    module_dir = self.path("module")
    self.run_ref(_REF_EXPORT_DENSE % {"module_dir": module_dir})
    variables_dir = os.path.join(module_dir, "variables")
    for name in tf.io.gfile.listdir(variables_dir):
      tf.io.gfile.remove(os.path.join(variables_dir, name))
    bundle_copy.copy_tensors(train, os.path.join(variables_dir, "variables"),
                             {"w": "model/w", "b": "model/b"})
    got = self.run_ref(_REF_APPLY % {"module_dir": module_dir,
                                     "inputs": "np.ones([1, 3], np.float32)"})
    self.assertAllClose(got["y"],
                        np.ones([1, 3], np.float32) @ w_value + b_value)

  def test_partitioned_module_with_copied_slices_loads_in_tensorflow_hub(self):
    fidelity_lib.skip_without_ref(self)
    module_dir = self.path("module")
    train = self.path("train", "model.ckpt")
    self.run_ref(_REF_EXPORT_PARTITIONED % {"module_dir": module_dir,
                                            "train": train})
    trained = tf.train.load_checkpoint(train).get_tensor("encoder/table")
    self.assertLen(tensor_bundle.read_index(train)[1]["encoder/table"].slices,
                   3)
    variables_dir = os.path.join(module_dir, "variables")
    for name in tf.io.gfile.listdir(variables_dir):
      tf.io.gfile.remove(os.path.join(variables_dir, name))
    bundle_copy.copy_tensors(train, os.path.join(variables_dir, "variables"),
                             {"table": "encoder/table"}, copy_slices=True)
    got = self.run_ref(_REF_APPLY % {"module_dir": module_dir,
                                     "inputs": "np.arange(12, dtype=np.int64)"})
    self.assertAllEqual(np.array(got["y"], np.float32), trained)


# Snippets for fidelity_lib.run (`hub` is tensorflow_hub 0.15 there).
_REF_EXPORT_DENSE = """
def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 3])
  w = tf.compat.v1.get_variable("w", shape=[3, 2])
  b = tf.compat.v1.get_variable("b", shape=[2])
  hub.add_signature(inputs=x, outputs=tf.matmul(x, w) + b)

spec = hub.create_module_spec(module_fn)
with tf.Graph().as_default():
  m = hub.Module(spec)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    m.export(%(module_dir)r, sess)
"""

_REF_EXPORT_PARTITIONED = """
def module_fn():
  ids = tf.compat.v1.placeholder(tf.int64, [None])
  table = tf.compat.v1.get_variable(
      "table", shape=[12, 3],
      partitioner=tf.compat.v1.fixed_size_partitioner(3))
  hub.add_signature(
      inputs=ids,
      outputs=tf.compat.v1.nn.embedding_lookup(table, ids,
                                               partition_strategy="div"))

spec = hub.create_module_spec(module_fn)
train = %(train)r
with tf.Graph().as_default():
  m = hub.Module(spec, trainable=True, name="encoder")
  saver = tf.compat.v1.train.Saver()
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    m.export(%(module_dir)r, sess)
    tf.io.gfile.makedirs(os.path.dirname(train))
    saver.save(sess, train, write_meta_graph=False, write_state=False)
"""

_REF_APPLY = """
import numpy as np
with tf.Graph().as_default():
  m = hub.Module(%(module_dir)r)
  y = m(%(inputs)s)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    emit("y", sess.run(y).tolist())
"""


def _header(num_shards):
  return tensor_bundle.new_header(num_shards)


def _entry(shard, offset, size, crc=0, shape=(), slices=0):
  """A float entry of the given placement, for planning tests."""
  entry = tensor_bundle.BundleEntryProto(
      dtype=types_pb2.DT_FLOAT, shard_id=shard, offset=offset, size=size,
      crc32c=crc)
  for d in shape:
    entry.shape.dim.add(size=d)
  for _ in range(slices):
    entry.slices.append(tensor_slice_pb2.TensorSliceProto())
  return entry


def _index_block_entries(table):
  """The (key, handle) entries of a table's index block."""
  footer = table[-tensor_bundle.FOOTER_SIZE:]
  _, pos = tensor_bundle.BlockHandle.decode(footer)
  index_handle, _ = tensor_bundle.BlockHandle.decode(footer, pos)
  contents = _sstable.read_block(table, index_handle, "test")
  return list(_sstable.iter_block(contents, "test"))


if __name__ == "__main__":
  tf.test.main()
