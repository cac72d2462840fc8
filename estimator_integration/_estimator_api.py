"""Access to the tf.estimator API, with one clear error when it is missing.

TensorFlow 2.16 and later ship no Estimator.  Everything in this package that
needs it goes through `estimator_v1()`, so that importing the package on such a
TensorFlow fails early with an `ImportError` that says why (callers such as
`hub_tf1/__init__.py` guard the import and carry on without these names).
"""

import types

import tensorflow as tf

_MISSING_MESSAGE = (
    "tf.estimator is not available in TensorFlow %s (it was removed in 2.16); "
    "the Estimator integration of hub_tf1 needs TensorFlow <= 2.15 with "
    "tf-estimator-nightly or tensorflow-estimator installed.")


def estimator_v1() -> types.ModuleType:
  """Returns `tf.compat.v1.estimator`.

  Raises:
    ImportError: this TensorFlow has no Estimator.
  """
  try:
    api = tf.compat.v1.estimator
    # The attribute is a lazy loader: touching a member performs the import.
    api.Exporter  # pylint: disable=pointless-statement
  except (AttributeError, ImportError) as e:
    raise ImportError(_MISSING_MESSAGE % tf.__version__) from e
  return api


def is_available() -> bool:
  """Whether `estimator_v1()` works in this process."""
  try:
    estimator_v1()
  except ImportError:
    return False
  return True
