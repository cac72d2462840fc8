"""Whether this TensorFlow has an Estimator, without importing our Estimator layer.

Rules of this file: it only asks TensorFlow, and it answers with a reason
string, never by raising, so that `hub_tf1.__getattr__` can tell "no
Estimator in this TensorFlow" (the one case that gets the "needs
tf.estimator" message) apart from a bug in `estimator_integration`, whose
ImportError must surface as it is.
"""

from typing import Optional

import tensorflow as tf


def missing_reason() -> Optional[str]:
  """Why `tf.compat.v1.estimator` cannot be used here, or None when it can.

  Returns:
    None when the Estimator imports; else a sentence naming the TensorFlow
    version and what to install.
  """
  try:
    # A lazy loader: touching a member performs the import.
    tf.compat.v1.estimator.Exporter  # pylint: disable=pointless-statement
  except (AttributeError, ImportError) as e:
    return ("TensorFlow %s has no tf.estimator (removed in 2.16; hub_tf1 runs "
            "the last Estimator wheel on 2.16-2.21 with tf-keras: pip install "
            "tf-estimator-nightly==2.16.0.dev2024012409 tf-keras==<TF major."
            "minor>): %s" % (tf.__version__, e))
  return None
