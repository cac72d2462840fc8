"""scan: flagged ops found in graphs and function libraries; fixtures clean;
strict op policy refuses before anything runs."""

import gc
import os
from unittest import mock

from absl.testing import absltest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

import hub_tf1 as hub
from hub_tf1 import cli
from hub_tf1.inspection import scan
from tests import testing_http_server
from tests import testing_modules as tm

_FIXTURES = os.path.join(tm.FIXTURES_DIR, "ref_modules")


def _payload_module_fn(target, place):
  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    write = lambda: tf.io.write_file(target, "pwned")
    if place == "signature":
      with tf.control_dependencies([write()]):
        y = tf.identity(x)
    else:  # "function": inside a tf.function (function library).
      @tf.function
      def f(v):
        with tf.control_dependencies([write()]):
          return tf.identity(v)
      y = f(x)
    hub.add_signature(inputs=x, outputs=y)
  return module_fn


def _large_meta_graph(layers: int, with_saver: bool):
  """A clean MetaGraphDef of ~4 nodes per layer, as protos only.

  With `with_saver`, it also has a SaverDef whose SaveV2/RestoreV2 (allowed
  ops) make the scan build its node index and follow the saver's sub-graph.
  """
  mg = meta_graph_pb2.MetaGraphDef()
  nodes = mg.graph_def.node
  nodes.add(name="x", op="Placeholder")
  previous, variables = "x", []
  for i in range(layers):
    nodes.add(name="w%d" % i, op="VarHandleOp")
    nodes.add(name="r%d" % i, op="ReadVariableOp", input=["w%d" % i])
    nodes.add(name="m%d" % i, op="MatMul", input=[previous, "r%d" % i])
    nodes.add(name="y%d" % i, op="Relu", input=["m%d" % i])
    previous = "y%d" % i
    variables.append("w%d" % i)
  mg.signature_def["default"].outputs["default"].name = previous + ":0"
  if with_saver:
    nodes.add(name="save/filename", op="Placeholder")
    nodes.add(name="save/SaveV2", op="SaveV2",
              input=["save/filename"] + variables)
    nodes.add(name="save/control", op="Identity",
              input=["save/filename", "^save/SaveV2"])
    nodes.add(name="save/RestoreV2", op="RestoreV2", input=["save/filename"])
    nodes.add(name="save/restore_all", op="NoOp",
              input=["^save/RestoreV2"])
    mg.saver_def.filename_tensor_name = "save/filename:0"
    mg.saver_def.save_tensor_name = "save/control:0"
    mg.saver_def.restore_op_name = "save/restore_all"
  return mg


class ScanTest(absltest.TestCase):

  def test_fixtures_scan_clean(self):
    count = 0
    for name in sorted(os.listdir(_FIXTURES)):
      path = os.path.join(_FIXTURES, name)
      if name.startswith("broken") or not os.path.isdir(path):
        continue
      self.assertEqual(cli.main(["scan", path]), 0, name)
      count += 1
    self.assertGreater(count, 5)

  def test_archived_fixtures_over_http_scan_and_inspect_clean(self):
    # The tarball fixtures (and the TF 1.12 module in external/), as URLs on
    # 127.0.0.1, resolved into a cache of this test's own.
    archives = [os.path.join("ref_modules", n) for n in
                sorted(os.listdir(_FIXTURES))
                if n.endswith(".tar.gz") and not n.startswith("broken")]
    archives.append(os.path.join("external", "half_plus_two_v1.tar.gz"))
    cache = self.create_tempdir().full_path
    with testing_http_server.TestingHttpServer(tm.FIXTURES_DIR) as server:
      with mock.patch.dict(os.environ, {"TFHUB_CACHE_DIR": cache}):
        for archive in archives:
          url = server.url("/" + archive)
          self.assertEqual(cli.main(["scan", url]), 0, archive)
          self.assertEqual(cli.main(["inspect", url, "--json"]), 0, archive)
    self.assertLen(archives, 2)

  def test_strict_tf2_load_and_keras_layer(self):
    root = self.create_tempdir().full_path
    target = os.path.join(root, "written")
    module_dir = os.path.join(root, "payload")
    with tf.Graph().as_default():
      module = hub.Module(hub.create_module_spec(
          _payload_module_fn(target, "signature")))
      with tf.compat.v1.Session() as session:
        module.export(module_dir, session)
    for make in (lambda: hub.load(module_dir, op_policy="strict"),
                 lambda: hub.KerasLayer(module_dir, op_policy="strict")):
      with self.assertRaisesRegex(hub.UnsafeModuleError, "WriteFile"):
        make()
    with mock.patch.dict(os.environ, {scan.POLICY_ENV: "strict"}):
      with self.assertRaises(hub.UnsafeModuleError):
        hub.load(module_dir)
    self.assertFalse(os.path.exists(target))
    # Default: loads (the payload would run only when called).
    self.assertIsNotNone(hub.load(module_dir))
    self.assertFalse(os.path.exists(target))
    # A TF2 SavedModel is not scanned: strict refuses it, naming why.
    saved = os.path.join(root, "tf2")
    tf.saved_model.save(tf.Module(), saved)
    with self.assertRaisesRegex(ValueError, "TF2 SavedModel.*strict"):
      hub.load(saved, op_policy="strict")

  def test_payloads_found_and_strict_runs_nothing(self):
    tmp = self.create_tempdir().full_path
    for place in ("signature", "function"):
      target = os.path.join(tmp, place + ".txt")
      module_dir = os.path.join(tmp, place)
      with tf.Graph().as_default():
        m = hub.Module(hub.create_module_spec(
            _payload_module_fn(target, place)))
        with tf.compat.v1.Session() as sess:
          m.export(module_dir, sess)
      self.assertEqual(cli.main(["scan", module_dir]), 1, place)
      findings = scan.scan_spec(hub.load_module_spec(module_dir))
      self.assertEqual([f.op for f in findings], ["WriteFile"], place)
      self.assertIn("signature:default", findings[0].where)
      with tf.Graph().as_default():
        with self.assertRaises(hub.UnsafeModuleError):
          hub.Module(module_dir, op_policy="strict")
      self.assertFalse(os.path.exists(target))
      with tf.Graph().as_default():
        y = hub.Module(module_dir)([1.0])
        with tf.compat.v1.Session() as sess:
          sess.run(y)
      self.assertTrue(os.path.exists(target), place)

  def test_clean_scan_leaves_the_garbage_collector_alone(self):
    # Strict Modules scan right before they import the graph: objects the
    # scan keeps alive across young collections would bring on a full
    # collection of the process there (issue 14).  Counted, not timed.
    old_threshold = gc.get_threshold()
    self.addCleanup(gc.set_threshold, *old_threshold)
    gc.set_threshold(700, 10, 10)
    collections = []

    def callback(phase, info):
      if phase == "start":
        collections.append(info["generation"])

    for with_saver in (False, True):
      mg = _large_meta_graph(2000, with_saver)
      gc.collect()
      collections.clear()
      gc.callbacks.append(callback)
      try:
        findings = scan.scan_meta_graph(mg)
      finally:
        gc.callbacks.remove(callback)
      self.assertEqual(findings, [], with_saver)
      self.assertLessEqual(len(collections), 2, (with_saver, collections))

  def test_unreadable_module_exit_2(self):
    self.assertEqual(cli.main(["scan", self.create_tempdir().full_path]), 2)


if __name__ == "__main__":
  absltest.main()
