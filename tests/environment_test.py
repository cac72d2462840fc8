"""Facts about the interpreter and TensorFlow build the tests run under.

The suite runs twice: under Bazel with .venv/legacy (TF 2.15.1 plus the
tf-estimator-nightly Estimator) and under pytest with .venv/modern (TF >= 2.16,
no Estimator).  These tests pin down that each run really uses the intended
environment, so a silently wrong interpreter or estimator build fails loudly.
"""

import importlib.metadata
import os
import sys

from absl.testing import absltest
import tensorflow as tf

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_NIGHTLY = "tf-estimator-nightly"
_RELEASE = "tensorflow-estimator"


def _tf_version() -> tuple[int, int]:
  major, minor = tf.__version__.split(".")[:2]
  return int(major), int(minor)


def _has_estimator() -> bool:
  """Whether this TensorFlow still ships tf.compat.v1.estimator."""
  try:
    return hasattr(tf.compat.v1, "estimator")
  except ImportError:
    return False


def _installed(distribution: str) -> bool:
  try:
    importlib.metadata.distribution(distribution)
  except importlib.metadata.PackageNotFoundError:
    return False
  return True


class InterpreterTest(absltest.TestCase):

  def test_interpreter_is_a_repo_virtualenv(self):
    venv_root = os.path.join(_REPO_ROOT, ".venv")
    # sys.prefix is the venv directory itself (not resolved: the venv's
    # python is a symlink to the base interpreter).
    prefix = os.path.realpath(sys.prefix)
    self.assertEqual(os.path.dirname(prefix), os.path.realpath(venv_root),
                     "tests run with %s, not a .venv/* of %s" %
                     (sys.executable, _REPO_ROOT))
    self.assertNotEqual(sys.prefix, sys.base_prefix)

  def test_virtualenv_matches_tensorflow(self):
    venv_name = os.path.basename(os.path.realpath(sys.prefix))
    if "TEST_SRCDIR" in os.environ:  # Under `bazel test`.
      self.assertEqual(venv_name, "legacy")
    if _tf_version() < (2, 16):
      # .venv/ref shares the legacy TensorFlow (reference runs only).
      self.assertIn(venv_name, ("legacy", "ref"))
    else:
      self.assertEqual(venv_name, "modern")

  def test_hub_tf1_is_imported_from_this_workspace(self):
    import hub_tf1.fileio  # pylint: disable=g-import-not-at-top
    self.assertEqual(
        os.path.dirname(os.path.dirname(os.path.realpath(
            hub_tf1.fileio.__file__))), _REPO_ROOT)


class LegacyEstimatorTest(absltest.TestCase):
  """The legacy environment: TF 2.15 with the nightly Estimator build."""

  def setUp(self):
    super().setUp()
    if _tf_version() >= (2, 16):
      self.skipTest("TensorFlow %s has no Estimator; the legacy environment "
                    "(.venv/legacy) checks run under Bazel" % tf.__version__)

  def test_tensorflow_is_2_15_1(self):
    self.assertEqual(tf.__version__, "2.15.1")

  def test_estimator_class_exists(self):
    self.assertTrue(callable(tf.compat.v1.estimator.Estimator))
    self.assertTrue(callable(tf.estimator.Estimator))

  def test_only_the_nightly_estimator_distribution_is_installed(self):
    self.assertTrue(_installed(_NIGHTLY))
    self.assertEqual(importlib.metadata.version(_NIGHTLY),
                     "2.16.0.dev2024012409")
    self.assertFalse(_installed(_RELEASE),
                     "%s %s is installed next to %s" %
                     (_RELEASE, importlib.metadata.version(_RELEASE)
                      if _installed(_RELEASE) else "", _NIGHTLY))

  def test_imported_estimator_files_belong_to_the_nightly(self):
    # The Estimator class TF hands out is defined in a file that the nightly
    # distribution installed (the 2.15 release writes the same paths).
    estimator_module = sys.modules[tf.compat.v1.estimator.Estimator.__module__]
    imported = os.path.realpath(estimator_module.__file__)
    dist = importlib.metadata.distribution(_NIGHTLY)
    owned = {os.path.realpath(dist.locate_file(f)) for f in dist.files}
    self.assertIn(imported, owned)


class ModernTensorFlowTest(absltest.TestCase):
  """The modern environment: TF >= 2.16 without any Estimator."""

  def setUp(self):
    super().setUp()
    if _tf_version() < (2, 16):
      self.skipTest("TensorFlow %s still has the Estimator; the modern "
                    "environment (.venv/modern) checks run under pytest" %
                    tf.__version__)

  def test_estimator_is_unavailable(self):
    self.assertFalse(_has_estimator())
    with self.assertRaises(ImportError):
      import tensorflow_estimator.python.estimator.estimator  # pylint: disable=g-import-not-at-top,unused-import

  def test_no_estimator_distribution_is_installed(self):
    self.assertFalse(_installed(_NIGHTLY))
    self.assertFalse(_installed(_RELEASE))


if __name__ == "__main__":
  absltest.main()
