"""Where a Module's checkpoint is read: on the variable's device or the reader's.

Variables on a device of this process are restored by one RestoreV2 per
device, on that device; variables on another task's device (`/job:...`) by
reads placed by the caller's device functions and chained one after another
(module/state.py).  The cluster behaviour itself is in
cluster_unreadable_module_test.py; here the graph structure and the values.
"""

import os
import tempfile
from unittest import mock

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from hub_tf1.module import state as state_lib

_LOCAL = "/job:localhost/replica:0/task:0/device:CPU:0"


def _module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  w = tf.compat.v1.get_variable("w", [3, 2])
  b = tf.compat.v1.get_variable("b", [2])
  emb = tf.compat.v1.get_variable(
      "emb", [10, 2], partitioner=tf.compat.v1.fixed_size_partitioner(3))
  hub.add_signature(inputs=x,
                    outputs=tf.matmul(x, w) + b + tf.reduce_sum(emb))


class RemoteRestoreTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.module_dir = os.path.join(
        tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir()), "module")
    with tf.Graph().as_default():
      module = hub.Module(hub.create_module_spec(_module_fn))
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        module.export(cls.module_dir, session)
        cls.expected = session.run(module(tf.ones([2, 3])))

  def _build(self, device_fn=None):
    graph = tf.Graph()
    with graph.as_default():
      with tf.compat.v1.device(device_fn):
        module = hub.Module(self.module_dir)
        output = module(tf.ones([2, 3]))
    reads = [op for op in graph.get_operations() if op.type == "RestoreV2"]
    return graph, output, reads

  def _run(self, graph, output):
    with graph.as_default(), tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return session.run(output)

  def test_local_variables_one_read_per_device(self):
    graph, output, reads = self._build()
    self.assertLen(reads, 1)
    self.assertEqual(reads[0].device, "")
    self.assertEmpty(reads[0].control_inputs)
    np.testing.assert_allclose(self._run(graph, output), self.expected)

  def test_variables_on_another_task_are_read_by_the_builder(self):
    setter = tf.compat.v1.train.replica_device_setter(
        ps_tasks=1, ps_device="/job:localhost/replica:0/task:0/device:CPU:0",
        worker_device="/job:localhost/replica:0/task:0")
    graph, output, reads = self._build(setter)
    variables = [op for op in graph.get_operations()
                 if op.type in ("VarHandleOp", "VariableV2")]
    self.assertNotEmpty(variables)
    for op in variables:
      self.assertStartsWith(op.device, "/job:localhost")
    for read in reads:  # Placed by the worker_device rule, not colocated.
      self.assertEqual(read.device, "/job:localhost/replica:0/task:0")
      self.assertEmpty(read.colocation_groups()[1:])
    # Small tensors: one read; the values are the module's.
    self.assertLen(reads, 1)
    np.testing.assert_allclose(self._run(graph, output), self.expected)

  def test_reads_are_chunked_and_chained(self):
    setter = tf.compat.v1.train.replica_device_setter(
        ps_tasks=1, ps_device="/job:localhost/replica:0/task:0/device:CPU:0",
        worker_device="/job:localhost/replica:0/task:0")
    with mock.patch.object(state_lib, "REMOTE_READ_BYTES", 1):
      graph, output, reads = self._build(setter)
    # w, b and three parts of emb: one read each, each after the previous.
    self.assertLen(reads, 5)
    for previous, read in zip(reads, reads[1:]):
      waited = {op.name for op in read.control_inputs}
      assigns = {op.name for op in graph.get_operations()
                 if op.type in ("AssignVariableOp", "Assign") and
                 previous.name in [i.op.name for i in op.inputs]}
      self.assertNotEmpty(assigns)
      self.assertEqual(waited, assigns)
    np.testing.assert_allclose(self._run(graph, output), self.expected)


  def _setter(self):
    return tf.compat.v1.train.replica_device_setter(
        ps_tasks=1, ps_device=_LOCAL,
        worker_device="/job:localhost/replica:0/task:0")

  def test_restore_on_the_variables_device_when_asked(self):
    with mock.patch.dict(os.environ, {state_lib.REMOTE_RESTORE_ENV: "device"}):
      graph, output, reads = self._build(self._setter())
    self.assertLen(reads, 1)  # One per device, on it, as the original does.
    self.assertEqual(reads[0].device, _LOCAL)
    np.testing.assert_allclose(self._run(graph, output), self.expected)

  def test_bad_remote_restore_setting_names_the_variable(self):
    with mock.patch.dict(os.environ, {state_lib.REMOTE_RESTORE_ENV: "ps"}):
      with self.assertRaisesRegex(
          ValueError, r"\$HUB_TF1_REMOTE_RESTORE='ps'.*auto, here, device"):
        self._build(self._setter())

  def test_auto_reads_here_only_for_local_paths(self):
    reads_here = state_lib._reads_remote_here  # pylint: disable=protected-access
    with mock.patch.dict(os.environ, {state_lib.REMOTE_RESTORE_ENV: ""}):
      for path in ("/m/variables/variables", "file:///m/variables/variables",
                   "ram://m/variables/variables", "relative/variables"):
        self.assertTrue(reads_here(path), path)
      for path in ("gs://bucket/m/variables/variables",
                   "hdfs://nn/m/variables/variables", "s3://b/m/variables"):
        self.assertFalse(reads_here(path), path)
    with mock.patch.dict(os.environ, {state_lib.REMOTE_RESTORE_ENV: "here"}):
      self.assertTrue(reads_here("gs://bucket/m/variables/variables"))


if __name__ == "__main__":
  absltest.main()
