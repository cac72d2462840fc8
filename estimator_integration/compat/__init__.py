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
* `estimator_integration/__init__.py` calls `install()` before anything
  touches `tf.estimator` (so do `hub_tf1`'s lazy Estimator names, which
  import that package); call it again after a later
  `import tensorflow.compat.v1`, which re-creates `tf.compat`.
"""

import importlib.util
import sys
import types

from absl import logging

from estimator_integration.compat import distribute_training
from estimator_integration.compat import tpu_stubs

# TensorFlow minor versions this layer was tested with.
TESTED_VERSIONS = ("2.15", "2.21")
_installed = False


def _tf_minor(version: str) -> tuple:
  parts = version.split(".")
  return int(parts[0]), int(parts[1])


def _register(name: str, module: types.ModuleType) -> None:
  parent_name, _, child = name.rpartition(".")
  if importlib.util.find_spec(parent_name) is None:
    return
  if importlib.util.find_spec(name) is not None:
    return  # This TensorFlow still has its own.
  sys.modules[name] = module
  setattr(importlib.import_module(parent_name), child, module)


def _attach(tf) -> None:
  """Puts `tf.estimator` etc. back onto TensorFlow's API modules."""
  # pylint: disable=g-import-not-at-top
  from tensorflow_estimator.python.estimator.api._v1 import estimator as v1
  from tensorflow_estimator.python.estimator.api._v2 import estimator as v2
  # pylint: enable=g-import-not-at-top
  tf.estimator = v2
  tf.compat.v1.estimator = v1
  tf.compat.v2.estimator = v2


def install() -> bool:
  """Makes `tf.estimator` usable on this TensorFlow, when it needs help.

  Returns:
    True when the layer is active (TensorFlow >= 2.16 with the Estimator wheel
    installed), False when it is not needed or cannot help.

  Raises:
    ImportError: TensorFlow >= 2.16 and the Estimator wheel or its `tf_keras`
      dependency is missing (the message says what to install).
  """
  global _installed
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if _installed:
    _attach(tf)  # `import tensorflow.compat.v1` re-creates tf.compat.
    return True
  version = _tf_minor(tf.__version__)
  if version <= (2, 15):
    return False
  if "%d.%d" % version not in TESTED_VERSIONS:
    logging.warning(
        "hub_tf1's Estimator compatibility layer was tested with TensorFlow "
        "%s, not %s; tf.estimator may fail.", ", ".join(TESTED_VERSIONS),
        tf.__version__)
  for name in ("tensorflow_estimator", "tf_keras"):
    if importlib.util.find_spec(name) is None:
      raise ImportError(
          "TensorFlow %s has no tf.estimator; hub_tf1 runs the last Estimator "
          "wheel on it, which needs the package %r: pip install "
          "tf-estimator-nightly==2.16.0.dev2024012409 tf-keras==%d.%d" %
          ((tf.__version__, name) + version))
  _register("tensorflow.python.distribute.estimator_training",
            distribute_training.as_module())
  for name, module in tpu_stubs.modules().items():
    _register(name, module)
  _attach(tf)
  _installed = True
  return True
