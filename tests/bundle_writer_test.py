"""Tests of the streaming checkpoint writer behind `Module.export`.

format/bundle_writer.py writes a V2 checkpoint from chunks and
module/variable_writer.py feeds it from the session.  What they write must
be byte for byte what a Saver writes for the same variables, through every
path (small variables fetched together, large ones sliced, ref and resource
variables, scalars, empty tensors, bfloat16 and bool), and bad input or a
failing write must raise, naming the tensor, and leave no index (and, for
an export, nothing at the path).
"""

import contextlib
import gc
import os
from unittest import mock
import weakref

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from hub_tf1.format import bundle_writer
from hub_tf1.format import tensor_bundle
from hub_tf1.module import variable_writer
from tests import testing_modules as tm


def _mixed_module_fn():
  """Variables of every shape class the writer distinguishes."""
  x = tf.compat.v1.placeholder(tf.float32, [None, 7])
  w = tf.compat.v1.get_variable(
      "w", initializer=tf.random.stateless_normal([1000, 7], seed=[1, 2]))
  tf.compat.v1.get_variable("count", initializer=tf.constant(3, tf.int64))
  tf.compat.v1.get_variable("flags", initializer=tf.constant([True, False]))
  tf.compat.v1.get_variable("half", initializer=tf.fill([3, 5], tf.constant(
      1.5, tf.bfloat16)))
  tf.compat.v1.Variable(tf.reshape(tf.range(600.0), [150, 4]),
                        name="ref_rows", use_resource=False)
  tf.compat.v1.get_variable("empty", shape=[0, 4])
  tf.compat.v1.get_variable("cube", initializer=tf.reshape(
      tf.range(2 * 9 * 3, dtype=tf.int32), [2, 9, 3]))
  hub.add_signature(inputs=x, outputs=tf.matmul(x, w, transpose_b=True))


def _raw(session):
  """The tf.compat.v1.Session under a MonitoredSession (a Saver needs it)."""
  return session.raw_session() if hasattr(session, "raw_session") else session


def _files(prefix):
  out = {}
  for suffix in (".index", ".data-00000-of-00001"):
    with tf.io.gfile.GFile(prefix + suffix, "rb") as f:
      out[suffix] = f.read()
  return out


class _Routes:
  """Counts which writer of variable_writer.py wrote an export.

  Chunks fetched: the streaming writer; write_bundle without them: the
  in-process one; neither: SaveV2.
  """

  def __init__(self):
    self.fetched = self.bundles = 0

  def patches(self):
    """Context managers that count, without changing, the writers' calls."""
    routes = self
    original_fetch = variable_writer._StreamingWriter._fetch
    original_bundle = bundle_writer.write_bundle

    def fetch(writer, *args):
      routes.fetched += 1
      return original_fetch(writer, *args)

    def bundle(*args):
      routes.bundles += 1
      return original_bundle(*args)

    return [mock.patch.object(variable_writer._StreamingWriter, "_fetch",
                              fetch),
            mock.patch.object(bundle_writer, "write_bundle", bundle)]

  def name(self) -> str:
    if self.fetched:
      return "fetched"
    return "in_process" if self.bundles else "savev2"


class ModuleExportStreamingTest(absltest.TestCase):

  def _export_and_save(self, module_fn, chunk_bytes, stream_min_bytes=0,
                       in_process=True, session_fn=None):
    """(files of Module.export, files of a sharded Saver, the writer used).

    Args:
      module_fn: the module's function.
      chunk_bytes: `_CHUNK_BYTES` and `_IN_PROCESS_CHUNK_BYTES`.
      stream_min_bytes: `_STREAM_MIN_BYTES`.
      in_process: False makes the session count as another process's.
      session_fn: makes the session from the graph (default: a Session).
    """
    tmp = tm.make_temp_dir(self)
    path = os.path.join(tmp, "exported")
    prefix = os.path.join(tmp, "by_saver", "variables")
    tf.io.gfile.makedirs(os.path.dirname(prefix))
    routes = _Routes()
    with contextlib.ExitStack() as stack:
      stack.enter_context(mock.patch.multiple(
          variable_writer, _CHUNK_BYTES=chunk_bytes,
          _IN_PROCESS_CHUNK_BYTES=chunk_bytes,
          _STREAM_MIN_BYTES=stream_min_bytes))
      if not in_process:
        stack.enter_context(mock.patch.object(
            variable_writer, "_in_this_process", return_value=False))
      with tf.Graph().as_default() as graph:
        m = hub.Module(hub.create_module_spec(module_fn))
        saver = tf.compat.v1.train.Saver(m.variable_map, sharded=True)
        with (session_fn or (lambda g: tf.compat.v1.Session(graph=g)))(
            graph) as session:
          if session is _raw(session):  # A MonitoredSession initializes.
            tm.run_init(session)
          with contextlib.ExitStack() as counting:
            for patch in routes.patches():
              counting.enter_context(patch)
            m.export(path, session)
          saver.save(_raw(session), prefix, write_meta_graph=False,
                     write_state=False)
    self.assertCountEqual(tf.io.gfile.listdir(os.path.join(path, "variables")),
                          ["variables.index", "variables.data-00000-of-00001"])
    return (_files(os.path.join(path, "variables", "variables")),
            _files(prefix), routes.name())

  def test_in_process_files_equal_a_savers_at_every_chunk_size(self):
    self.assertTrue(bundle_writer.available())
    # 64 bytes: w in many writes, batched; 16 MiB: every tensor whole.
    for chunk_bytes in (64, 16 << 20):
      with self.subTest(chunk_bytes=chunk_bytes):
        exported, saved, route = self._export_and_save(_mixed_module_fn,
                                                       chunk_bytes)
        self.assertEqual(route, "in_process")
        self.assertEqual(exported, saved)

  def test_fetched_files_equal_a_savers_at_every_chunk_size(self):
    # 64 bytes: every tensor above it sliced (w in 1-row chunks); 4 KiB: w in
    # several chunks, the small ones fetched together; 16 MiB: one batch.
    for chunk_bytes in (64, 4096, 16 << 20):
      with self.subTest(chunk_bytes=chunk_bytes):
        exported, saved, route = self._export_and_save(
            _mixed_module_fn, chunk_bytes, in_process=False)
        self.assertEqual(route, "fetched")
        self.assertEqual(exported, saved)

  def test_ref_and_resource_module_streams(self):
    for in_process, expected in ((True, "in_process"), (False, "fetched")):
      with self.subTest(expected):
        exported, saved, route = self._export_and_save(
            tm.ref_and_resource_module_fn, 8, in_process=in_process)
        self.assertEqual(route, expected)
        self.assertEqual(exported, saved)

  def test_session_of_a_server_is_not_in_process(self):
    # Its PyFunc could run in another process: the chunks are fetched.
    server = tf.distribute.Server.create_local_server()
    exported, saved, route = self._export_and_save(
        _mixed_module_fn, 4096,
        session_fn=lambda g: tf.compat.v1.Session(server.target, graph=g))
    self.assertEqual(route, "fetched")
    self.assertEqual(exported, saved)

  def test_monitored_session_is_not_in_process(self):
    # Its target is not public: the chunks are fetched.
    def monitored(graph):
      del graph  # The default graph.
      return tf.compat.v1.train.SingularMonitoredSession()
    exported, saved, route = self._export_and_save(
        _mixed_module_fn, 4096, session_fn=monitored)
    self.assertEqual(route, "fetched")
    self.assertEqual(exported, saved)

  def test_without_crc32c_savev2_writes_the_same_files(self):
    with mock.patch.object(bundle_writer, "_crc32c_c", None):
      self.assertFalse(bundle_writer.available())
      exported, saved, route = self._export_and_save(_mixed_module_fn, 64)
    self.assertEqual(route, "savev2")
    self.assertEqual(exported, saved)

  def test_many_variables_or_few_bytes_fall_back_to_savev2(self):
    def many_module_fn():
      x = tf.compat.v1.placeholder(tf.float32, [None, 2])
      y = x
      for i in range(variable_writer._STREAM_MAX_VARIABLES + 1):
        y += tf.compat.v1.get_variable("b%d" % i, initializer=tf.ones([2]))
      hub.add_signature(inputs=x, outputs=y)
    cases = [("many variables", many_module_fn, 0),
             ("few bytes", _mixed_module_fn, 1 << 20)]
    for name, module_fn, stream_min_bytes in cases:
      for in_process, expected in ((True, "in_process"), (False, "savev2")):
        with self.subTest(name=name, route=expected):
          exported, saved, route = self._export_and_save(
              module_fn, 64, stream_min_bytes, in_process=in_process)
          self.assertEqual(route, expected)
          self.assertEqual(exported, saved)

  def test_partitioned_and_string_variables_use_savev2(self):
    def string_module_fn():
      x = tf.compat.v1.placeholder(tf.string, [None])
      words = tf.compat.v1.get_variable(
          "words", initializer=tf.constant(["a", "bc"]))
      hub.add_signature(inputs=x, outputs=tf.strings.join([x, words[0]]))
    for module_fn in (tm.partitioned_module_fn(), string_module_fn):
      with self.subTest(module_fn.__name__):
        exported, saved, route = self._export_and_save(module_fn, 8)
        self.assertEqual(route, "savev2")
        self.assertEqual(exported, saved)

  def test_failing_write_leaves_nothing(self):
    for in_process in (True, False):
      with self.subTest(in_process=in_process):
        self._check_failing_write_leaves_nothing(in_process)

  def _check_failing_write_leaves_nothing(self, in_process):
    tmp = tm.make_temp_dir(self)
    path = os.path.join(tmp, "exported")

    def fail(*unused):
      raise OSError("No space left on device (simulated)")

    with mock.patch.multiple(variable_writer, _CHUNK_BYTES=64,
                             _STREAM_MIN_BYTES=0), \
        mock.patch.object(variable_writer, "_in_this_process",
                          return_value=in_process):
      with tf.Graph().as_default():
        m = hub.Module(hub.create_module_spec(_mixed_module_fn))
        with tf.compat.v1.Session() as session:
          tm.run_init(session)
          with mock.patch.object(bundle_writer._crc32c_c, "crc32c", fail):
            with self.assertRaisesRegex(OSError, "No space left"):
              m.export(path, session)
          # The writer is intact afterwards: the next export works.
          m.export(path, session)
    self.assertEqual(tf.io.gfile.listdir(tmp), ["exported"])
    self.assertTrue(tf.io.gfile.exists(
        os.path.join(path, "variables", "variables.index")))

  def test_in_process_writes_the_variables_memory_without_a_copy(self):
    # Two exports hand write_bundle views of the same buffer: the variable's.
    seen = []
    original = bundle_writer.write_bundle

    def keep(prefix, tensors):
      tensors = [t._replace(chunks=list(t.chunks)) for t in tensors]
      seen.append({t.key: t.chunks[0] for t in tensors if t.chunks})
      original(prefix, tensors)

    tmp = tm.make_temp_dir(self)
    with mock.patch.object(variable_writer, "_STREAM_MIN_BYTES", 0):
      with tf.Graph().as_default():
        m = hub.Module(hub.create_module_spec(_mixed_module_fn))
        with tf.compat.v1.Session() as session:
          tm.run_init(session)
          with mock.patch.object(bundle_writer, "write_bundle", keep):
            m.export(os.path.join(tmp, "a"), session)
            m.export(os.path.join(tmp, "b"), session)
    first, second = seen
    self.assertTrue(np.shares_memory(np.asarray(first["w"]),
                                     np.asarray(second["w"])))

  def test_sessions_are_not_kept_alive_and_closed_ones_refuse(self):
    tmp = tm.make_temp_dir(self)
    with mock.patch.object(variable_writer, "_STREAM_MIN_BYTES", 0):
      with tf.Graph().as_default() as graph:
        m = hub.Module(hub.create_module_spec(_mixed_module_fn))
        session = tf.compat.v1.Session(graph=graph)
        tm.run_init(session)
        m.export(os.path.join(tmp, "a"), session)
        session.close()
        with self.assertRaisesRegex(RuntimeError, "closed Session"):
          m.export(os.path.join(tmp, "b"), session)
        alive = weakref.ref(session)
        del session
        gc.collect()
        self.assertIsNone(alive())
        with tf.compat.v1.Session(graph=graph) as never_exported:
          tm.run_init(never_exported)
        with self.assertRaisesRegex(RuntimeError, "closed Session"):
          m.export(os.path.join(tmp, "c"), never_exported)
    self.assertEqual(sorted(tf.io.gfile.listdir(tmp)), ["a"])

  def test_variables_on_a_gpu_are_not_in_process(self):
    with tf.Graph().as_default():
      with tf.device("/device:GPU:0"):
        gpu = tf.compat.v1.get_variable("gpu", [2])
      with tf.device("/device:CPU:0"):
        cpu = tf.compat.v1.get_variable("cpu", [2])
      unplaced = tf.compat.v1.get_variable("unplaced", [2])
      with tf.compat.v1.Session() as session:
        def in_process(*variables):
          return variable_writer._in_this_process(
              session, [variable_writer.Entry(v.op.name, "", v)
                        for v in variables])
        self.assertTrue(in_process(cpu))
        self.assertTrue(in_process(cpu, unplaced))  # This session: CPU only.
        self.assertFalse(in_process(gpu))
        self.assertFalse(in_process(cpu, gpu))


class WriteBundleTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.prefix = os.path.join(tm.make_temp_dir(self), "ckpt")

  def test_round_trip_through_tensorflow(self):
    values = {
        "a/matrix": np.arange(35, dtype=np.float32).reshape(5, 7),
        "b/scalar": np.array(-4, dtype=np.int64),
        "c/complex": np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
        "d/empty": np.zeros([0, 3], dtype=np.float64),
    }
    tensors = [
        bundle_writer.StreamedTensor(
            key, tf.as_dtype(value.dtype), value.shape,
            # Rows one by one: chunk boundaries inside the tensor.
            [value[i:i + 1] for i in range(len(value))] if value.ndim
            else [value])
        for key, value in values.items()]
    bundle_writer.write_bundle(self.prefix, tensors)
    reader = tf.train.load_checkpoint(self.prefix)
    for key, value in values.items():
      np.testing.assert_array_equal(reader.get_tensor(key), value)
    # TensorFlow checks each tensor's crc32c when it restores it.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
      restored = session.run(tf.raw_ops.RestoreV2(
          prefix=self.prefix, tensor_names=list(values),
          shape_and_slices=[""] * len(values),
          dtypes=[tf.as_dtype(v.dtype) for v in values.values()]))
    for got, value in zip(restored, values.values()):
      np.testing.assert_array_equal(got, value)

  def test_short_stream_names_the_tensor_and_writes_no_index(self):
    tensors = [bundle_writer.StreamedTensor(
        "layer/w", tf.float32, (4, 2), [np.zeros([3, 2], np.float32)])]
    with self.assertRaisesRegex(
        bundle_writer.BundleWriteError,
        r"'layer/w' \(float32, shape \[4, 2\]\).*24 bytes, expected 32"):
      bundle_writer.write_bundle(self.prefix, tensors)
    self.assertFalse(tf.io.gfile.exists(self.prefix + ".index"))

  def test_string_tensor_is_refused(self):
    tensors = [bundle_writer.StreamedTensor("words", tf.string, (2,),
                                            [np.array([b"a", b"b"])])]
    with self.assertRaisesRegex(ValueError, "'words' of dtype string"):
      bundle_writer.write_bundle(self.prefix, tensors)
    self.assertFalse(tf.io.gfile.exists(self.prefix + ".index"))

  def test_key_given_twice_is_refused(self):
    one = bundle_writer.StreamedTensor("w", tf.float32, (1,),
                                       [np.zeros([1], np.float32)])
    with self.assertRaisesRegex(ValueError, "'w' is given twice"):
      bundle_writer.write_bundle(self.prefix, [one, one])

  def test_producer_error_propagates(self):
    def chunks():
      yield np.zeros([1, 2], np.float32)
      raise tf.errors.FailedPreconditionError(None, None, "uninitialized")
    tensors = [bundle_writer.StreamedTensor("w", tf.float32, (2, 2),
                                            chunks())]
    with self.assertRaisesRegex(tf.errors.FailedPreconditionError,
                                "uninitialized"):
      bundle_writer.write_bundle(self.prefix, tensors)
    self.assertFalse(tf.io.gfile.exists(self.prefix + ".index"))

  def test_unavailable_without_crc32c(self):
    with mock.patch.object(bundle_writer, "_crc32c_c", None):
      with self.assertRaisesRegex(RuntimeError, "crc32c"):
        bundle_writer.write_bundle(self.prefix, [])

  def test_index_has_tensorflows_entries(self):
    value = np.arange(12, dtype=np.int32).reshape(3, 4)
    bundle_writer.write_bundle(self.prefix, [bundle_writer.StreamedTensor(
        "v", tf.int32, (3, 4), [value[:2], value[2:]])])
    header, entries = tensor_bundle.read_index(self.prefix)
    self.assertEqual(header.num_shards, 1)
    self.assertEqual(entries["v"].size, 48)
    self.assertEqual(tensor_bundle.unmask_crc(entries["v"].crc32c),
                     tensor_bundle.crc32c(value.tobytes()))


if __name__ == "__main__":
  absltest.main()
