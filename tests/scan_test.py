"""scan: flagged ops found in graphs and function libraries; fixtures clean;
strict op policy refuses before anything runs."""

import os

from absl.testing import absltest
import tensorflow as tf

import hub_tf1 as hub
from hub_tf1 import cli
from hub_tf1.inspection import scan
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

  def test_unreadable_module_exit_2(self):
    self.assertEqual(cli.main(["scan", self.create_tempdir().full_path]), 2)


if __name__ == "__main__":
  absltest.main()
