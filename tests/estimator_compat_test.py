"""Tests of estimator_integration/compat (the Estimator on TF 2.16-2.21).

The pure-Python parts run everywhere.  The checks that need TensorFlow >=
2.16 with the tf-estimator-nightly wheel and tf-keras run in a subprocess of
this interpreter when it is one (.venv/modern), else of .venv/modern when it
exists (so the Bazel run on TF 2.15 covers them too), else skip saying why.
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
_MODERN_PYTHON = os.path.join(_ROOT, ".venv", "modern", "bin", "python")


def _newer_tf_python():
  """An interpreter with TF >= 2.16 and the Estimator wheel, or None."""
  major, minor = (int(p) for p in tf.__version__.split(".")[:2])
  if (major, minor) >= (2, 16) and _IMPORT_ERROR is None:
    return sys.executable
  return _MODERN_PYTHON if os.path.exists(_MODERN_PYTHON) else None


def _run_probe(test_case, code: str, env=None) -> subprocess.CompletedProcess:
  python = _newer_tf_python()
  if python is None:
    test_case.skipTest("no TF >= 2.16 interpreter with the Estimator wheel "
                       "(.venv/modern is missing)")
  full_env = dict(os.environ, PYTHONPATH=_ROOT)
  full_env.pop("TF_USE_LEGACY_KERAS", None)
  full_env.update(env or {})
  return subprocess.run([python, "-c", textwrap.dedent(code)], env=full_env,
                        text=True, capture_output=True, timeout=280,
                        check=False)

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
    result = _run_probe(self, _PROBE)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    weight = float(result.stdout.strip().splitlines()[-1].split()[1])
    self.assertNotEqual(weight, 0.0)  # Training moved the weight.


class ImportOrderTest(absltest.TestCase):
  """`tf.estimator` exists whichever way a legacy job imports things."""

  def _check(self, code: str) -> str:
    result = _run_probe(self, code)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    return result.stdout.strip().splitlines()[-1]

  def test_tensorflow_compat_v1_first(self):
    self.assertEqual(self._check("""
        import tensorflow.compat.v1 as tf
        import hub_tf1 as hub
        print(tf.estimator.RunConfig().is_chief)
        """), "True")

  def test_hub_first_then_tensorflow_compat_v1(self):
    # `import tensorflow.compat.v1` then makes a new module object.
    self.assertEqual(self._check("""
        import hub_tf1 as hub
        import tensorflow.compat.v1 as tf
        import tensorflow.compat.v2 as tf2
        print(tf.estimator.Estimator.__name__, tf2.estimator.Estimator.__name__)
        """), "Estimator EstimatorV2")

  def test_import_of_hub_does_not_import_the_estimator(self):
    self.assertEqual(self._check("""
        import sys
        import tensorflow as tf
        import hub_tf1 as hub
        before = [m for m in ("tensorflow_estimator", "tf_keras")
                  if m in sys.modules]
        tf.estimator.RunConfig
        print(before, "tensorflow_estimator" in sys.modules)
        """), "[] True")

  def test_from_import_of_estimator_names(self):
    self.assertEqual(self._check("""
        import hub_tf1 as hub
        from tensorflow.compat.v1 import estimator
        from tensorflow.compat.v1.estimator import RunConfig
        print(RunConfig is estimator.RunConfig)
        """), "True")


class DiagnosticsTest(absltest.TestCase):

  def test_compat_v1_layers_under_keras_3_names_the_fix(self):
    result = _run_probe(self, """
        import tensorflow as tf
        import hub_tf1 as hub
        with tf.Graph().as_default():
          tf.compat.v1.layers.dense(tf.zeros([1, 2]), 3)
        """)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("tf.compat.v1.layers.dense", result.stderr)
    self.assertIn("TF_USE_LEGACY_KERAS=1 before TensorFlow is imported",
                  result.stderr)

  def test_compat_v1_layers_with_legacy_keras(self):
    result = _run_probe(self, """
        import tensorflow as tf
        import hub_tf1 as hub
        with tf.Graph().as_default():
          print(tf.compat.v1.layers.dense(tf.zeros([1, 2]), 3).shape)
        """, env={"TF_USE_LEGACY_KERAS": "1"})
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(result.stdout.strip().splitlines()[-1], "(1, 3)")

  def test_untested_version_warns_naming_versions(self):
    result = _run_probe(self, """
        import tensorflow as tf
        tf.__version__ = "2.22.0"
        from estimator_integration import compat
        print(compat.install())
        """)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(result.stdout.strip().splitlines()[-1], "True")
    self.assertRegex(result.stderr,
                     r"tested with TensorFlow 2\.15, 2\.21, not 2\.22\.0")

  def test_missing_wheel_names_the_pip_line(self):
    result = _run_probe(self, """
        import sys
        sys.modules["tf_keras"] = None  # As if tf-keras were not installed.
        import hub_tf1 as hub  # The core works without an Estimator.
        try:
          hub.LatestModuleExporter
        except (ImportError, AttributeError) as e:
          print(type(e).__name__, str(e))
        """)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    last = result.stdout.strip().splitlines()[-1]
    self.assertIn("'tf_keras'", last)
    self.assertIn("pip install tf-estimator-nightly==2.16.0.dev2024012409 "
                  "tf-keras==2.21", last)


if __name__ == "__main__":
  absltest.main()
