"""Tests of estimator_integration/compat (the Estimator on TF 2.16-2.21).

The pure-Python parts run everywhere.  The end-to-end check needs an
interpreter with TensorFlow >= 2.16, the tf-estimator-nightly wheel and
tf-keras: `HUB_TF1_COMPAT_PYTHON` names one (tools/bootstrap.sh does not make
it yet; issue 11 is open), else the test skips and says so.
"""

import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
import tensorflow as tf

try:
  # Importing any part of estimator_integration installs the layer, which
  # raises ImportError on TF >= 2.16 without the Estimator wheel.
  from estimator_integration.compat import distribute_training  # pylint: disable=g-import-not-at-top
  from estimator_integration.compat import tpu_stubs  # pylint: disable=g-import-not-at-top
  _IMPORT_ERROR = None
except ImportError as e:
  _IMPORT_ERROR = e

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROBE = textwrap.dedent("""
    import tempfile
    import tensorflow as tf
    from estimator_integration import compat
    assert compat.install()
    import tensorflow.compat.v1  # re-creates tf.compat: must stay usable
    compat.install()
    est = tf.compat.v1.estimator

    def input_fn():
      return tf.data.Dataset.from_tensor_slices(
          ({"x": [[1.0], [2.0], [3.0], [4.0]]}, [[0], [0], [1], [1]])
      ).repeat().batch(2)

    columns = [tf.compat.v1.feature_column.numeric_column("x")]
    canned = est.DNNClassifier(hidden_units=[4], feature_columns=columns,
                               model_dir=tempfile.mkdtemp())
    canned.train(input_fn, max_steps=3)
    assert "accuracy" in canned.evaluate(input_fn, steps=1)

    def model_fn(features, labels, mode):
      w = tf.compat.v1.get_variable("w", [1, 1],
                                    initializer=tf.compat.v1.zeros_initializer())
      y = tf.matmul(features["x"], w)
      loss = tf.reduce_mean(tf.square(y - tf.cast(labels, tf.float32)))
      step = tf.compat.v1.train.get_global_step()
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
          loss, step)
      return est.EstimatorSpec(mode, loss=loss, predictions={"y": y},
                               train_op=train_op)

    custom = est.Estimator(model_fn, model_dir=tempfile.mkdtemp())
    tf.estimator.train_and_evaluate(
        custom, tf.estimator.TrainSpec(input_fn, max_steps=4),
        tf.estimator.EvalSpec(input_fn, steps=1))
    print("w", float(custom.get_variable_value("w")[0][0]))
    """)


class _CompatTestCase(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if _IMPORT_ERROR is not None:
      self.skipTest("no Estimator wheel in this interpreter: %s" %
                    _IMPORT_ERROR)


class TpuStubsTest(_CompatTestCase):

  def test_use_raises_naming_the_removed_symbol(self):
    module = tpu_stubs.modules()["tensorflow.python.tpu.tpu_embedding"]
    params = module.AdagradParameters  # Attribute access works (imports).
    with self.assertRaisesRegex(
        NotImplementedError, r"tpu_embedding\.AdagradParameters was removed"):
      params(learning_rate=0.1)


class DistributeTrainingTest(_CompatTestCase):

  def test_global_id_orders_chief_workers_ps(self):
    spec = tf.train.ClusterSpec({
        "chief": ["a:1"], "worker": ["b:1", "c:1"], "ps": ["d:1", "e:1"]})
    ids = [distribute_training._global_id(spec, job, i)  # pylint: disable=protected-access
           for job, i in (("chief", 0), ("worker", 0), ("worker", 1),
                          ("ps", 0), ("ps", 1))]
    self.assertEqual(ids, [0, 1, 2, 3, 4])

  def test_unknown_task_type(self):
    spec = tf.train.ClusterSpec({"worker": ["b:1"]})
    with self.assertRaisesRegex(RuntimeError, "'evaluator' is not in"):
      distribute_training._global_id(spec, "evaluator", 0)  # pylint: disable=protected-access

  def test_stand_in_module_has_what_the_estimator_calls(self):
    module = distribute_training.as_module()
    for name in ("init_run_config", "should_run_distribute_coordinator",
                 "train_and_evaluate", "estimator_train",
                 "estimator_evaluate"):
      self.assertTrue(callable(getattr(module, name)), name)


class InstallTest(_CompatTestCase):

  def test_no_op_on_tf_2_15(self):
    if not tf.__version__.startswith("2.15."):
      self.skipTest("TensorFlow %s: install() is active there" %
                    tf.__version__)
    from estimator_integration import compat  # pylint: disable=g-import-not-at-top
    self.assertFalse(compat.install())
    self.assertIn("tensorflow_estimator",
                  type(tf.compat.v1.estimator).__module__ +
                  repr(tf.compat.v1.estimator))

  def test_estimator_jobs_on_newer_tf(self):
    python = os.environ.get("HUB_TF1_COMPAT_PYTHON")
    if not python:
      self.skipTest("HUB_TF1_COMPAT_PYTHON (a TF >= 2.16 interpreter with "
                    "tf-estimator-nightly and tf-keras) is not set")
    env = dict(os.environ, PYTHONPATH=_ROOT)
    result = subprocess.run([python, "-c", _PROBE], env=env, text=True,
                            capture_output=True, timeout=280, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    weight = float(result.stdout.strip().splitlines()[-1].split()[1])
    self.assertNotEqual(weight, 0.0)  # Training moved the weight.


if __name__ == "__main__":
  absltest.main()
