"""Facts about the interpreter and TensorFlow build the tests run under.

The suite runs twice: under Bazel with .venv/legacy (TF 2.15.1 plus the
tf-estimator-nightly Estimator) and under pytest with .venv/modern (TF 2.21 on
Python 3.13, the same Estimator wheel through estimator_integration/compat).  These tests pin down that each run really uses the intended
environment, so a silently wrong interpreter or estimator build fails loudly.
"""

import glob
import importlib.metadata
import os
import subprocess
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
      self.skipTest("TensorFlow %s is not the legacy environment; its checks "
                    "(.venv/legacy, TF 2.15.1) run under Bazel" %
                    tf.__version__)

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
  """The modern environment: TF 2.21, whose Estimator comes from our layer."""

  def setUp(self):
    super().setUp()
    if _tf_version() < (2, 16):
      self.skipTest("TensorFlow %s still has the Estimator; the modern "
                    "environment (.venv/modern) checks run under pytest" %
                    tf.__version__)

  def test_tensorflow_is_2_21_0(self):
    self.assertEqual(tf.__version__, "2.21.0")

  def test_python_is_the_newest_that_pyenv_offers(self):
    pyenv = os.path.join(os.environ.get("PYENV_ROOT") or
                         os.path.expanduser("~/.pyenv"), "versions")
    for minor in (13, 12):
      if glob.glob(os.path.join(pyenv, "3.%d.*" % minor, "bin",
                                "python3.%d" % minor)):
        self.assertEqual(sys.version_info[:2], (3, minor))
        return
    self.skipTest("no Python 3.13 or 3.12 under %s: the bootstrap fell back "
                  "to %s" % (pyenv, sys.version.split()[0]))

  def test_tensorflow_alone_has_no_estimator(self):
    # In a fresh interpreter, before anything of ours is imported.
    result = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; "
         "print(hasattr(tf.compat.v1, 'estimator'))"],
        capture_output=True, text=True, check=True)
    self.assertEqual(result.stdout.strip().splitlines()[-1], "False")

  def test_hub_tf1_import_gives_the_nightly_estimator(self):
    import hub_tf1  # pylint: disable=g-import-not-at-top,unused-import
    self.assertTrue(_has_estimator())
    estimator_module = sys.modules[tf.compat.v1.estimator.Estimator.__module__]
    dist = importlib.metadata.distribution(_NIGHTLY)
    owned = {os.path.realpath(dist.locate_file(f)) for f in dist.files}
    self.assertIn(os.path.realpath(estimator_module.__file__), owned)

  def test_pinned_distributions(self):
    self.assertEqual(importlib.metadata.version(_NIGHTLY),
                     "2.16.0.dev2024012409")
    self.assertEqual(importlib.metadata.version("tf_keras"), "2.21.0")
    self.assertFalse(_installed(_RELEASE))


if __name__ == "__main__":
  absltest.main()
