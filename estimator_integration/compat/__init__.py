"""Lets the last Estimator wheel (tf-estimator-nightly 2.16.0.dev2024012409)
run on TensorFlow 2.16 through 2.21, which ship no Estimator.

Rules of this package:
* `install()` is the only entry point.  It is idempotent and does nothing on
  TensorFlow <= 2.15, where the Estimator's private imports all exist.
* Stand-ins are registered in `sys.modules` only under names that this
  TensorFlow does not provide (checked with `importlib.util.find_spec`), so a
  TensorFlow that still has a module keeps its own.
* The stand-ins hold behaviour we wrote from TF 2.15's documented behaviour
  (`distribute_training.py`) or refuse clearly (`tpu_stubs.py`: no TPU code
  exists any more); nothing here is copied from TensorFlow.
* `hub_tf1/__init__.py` and `estimator_integration/__init__.py` call
  `install(required=False)` first thing, so legacy jobs that do
  `import tensorflow as tf` and then the hub import (or the reverse) find
  `tf.estimator`; the Estimator layer's modules call `install()`, which
  raises when the Estimator wheel is missing.  This package imports nothing
  of hub_tf1 or of the rest of `estimator_integration` (it sits below both;
  docs/ARCHITECTURE.md), and nothing of the Estimator until a job uses it
  (`attach.py`).
"""

import importlib.util
import sys
import types

from absl import logging

from estimator_integration.compat import attach

# TensorFlow minor versions this layer was tested with.
TESTED_VERSIONS = ("2.15", "2.21")
# The last Estimator build (the tensorflow/estimator repository is archived).
ESTIMATOR_WHEEL = "2.16.0.dev2024012409"
_installed = False


def _tf_minor(version: str) -> tuple:
  parts = version.split(".")
  return int(parts[0]), int(parts[1])


def _importable(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):  # ValueError: blocked in sys.modules.
    return False


def _register(name: str, module: types.ModuleType) -> None:
  parent_name, _, child = name.rpartition(".")
  if importlib.util.find_spec(parent_name) is None:
    return
  if importlib.util.find_spec(name) is not None:
    return  # This TensorFlow still has its own.
  sys.modules[name] = module
  setattr(importlib.import_module(parent_name), child, module)


def install(required: bool = True) -> bool:
  """Makes `tf.estimator` usable on this TensorFlow, when it needs help.

  Args:
    required: raise when the layer is needed but the Estimator wheel or
      tf-keras is missing; with False, return False instead (the core calls it
      so, as it works without an Estimator).

  Returns:
    True when the layer is active (TensorFlow >= 2.16 with the Estimator wheel
    installed), False when it is not needed or cannot help.

  Raises:
    ImportError: `required`, TensorFlow >= 2.16 and the Estimator wheel or its
      `tf_keras` dependency is missing (the message says what to install).
  """
  global _installed
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if _installed:
    attach.attach_everywhere()
    return True
  version = _tf_minor(tf.__version__)
  if version <= (2, 15):
    return False
  for name in ("tensorflow_estimator", "tf_keras"):
    if not _importable(name):
      if not required:
        return False
      raise ImportError(
          "TensorFlow %s has no tf.estimator; hub_tf1 runs the last Estimator "
          "wheel on it, which needs the package %r: %s" %
          (tf.__version__, name, pip_line(tf.__version__)))
  if "%d.%d" % version not in TESTED_VERSIONS:
    logging.warning(
        "hub_tf1's Estimator compatibility layer was tested with TensorFlow "
        "%s, not %s; tf.estimator may fail.", ", ".join(TESTED_VERSIONS),
        tf.__version__)
  # pylint: disable=g-import-not-at-top
  from estimator_integration.compat import distribute_training
  from estimator_integration.compat import tpu_stubs
  # pylint: enable=g-import-not-at-top
  _register("tensorflow.python.distribute.estimator_training",
            distribute_training.as_module())
  for name, module in tpu_stubs.modules().items():
    _register(name, module)
  attach.install_hook()
  _installed = True
  return True


def pip_line(tf_version: str) -> str:
  """The install command that gives this TensorFlow an Estimator.

  Args:
    tf_version: `tf.__version__`.

  Returns:
    A `pip install ...` line for the wheels the layer needs.
  """
  major, minor = _tf_minor(tf_version)
  if (major, minor) <= (2, 15):
    return "pip install tf-estimator-nightly==%s" % ESTIMATOR_WHEEL
  return "pip install tf-estimator-nightly==%s tf-keras==%d.%d" % (
      ESTIMATOR_WHEEL, major, minor)
