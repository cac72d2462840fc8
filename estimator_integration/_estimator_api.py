"""Access to the tf.estimator API, with one clear error when it is missing.

Everything in this package that needs the Estimator goes through
`estimator_v1()`, so that importing the package on a TensorFlow without one
fails early with an `ImportError` that says why.  The check itself lives in
the core (`hub_tf1/_estimator_check.py`), which also uses it to explain a
missing `hub_tf1.LatestModuleExporter` without importing this package.
"""

import types

import tensorflow as tf

from estimator_integration import compat
from hub_tf1 import _estimator_check


def estimator_v1() -> types.ModuleType:
  """Returns `tf.compat.v1.estimator`.

  Raises:
    ImportError: this TensorFlow has no Estimator (the message says what to
      install).
  """
  compat.install()  # Raises naming the wheels on TF >= 2.16 without them.
  missing = _estimator_check.missing_reason()
  if missing:
    raise ImportError(missing)
  return tf.compat.v1.estimator

