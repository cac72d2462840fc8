"""Every use of TensorFlow's private (non-`tf.`) API in hub_tf1, in one file.

Rules: nothing else in `hub_tf1/` imports `tensorflow.python` or calls an
underscore member of a TensorFlow object; each function here says why the
public API does not do the job, so a TensorFlow upgrade means checking this
file.  Functions are thin: no policy, no error wrapping (callers add the
module and signature to messages).  Kept importable on TF 2.15 and 2.21.
"""

import contextlib

from tensorflow.python.eager import record
from tensorflow.python.ops import resource_variable_ops


@contextlib.contextmanager
def stop_recording():
  """Pauses every gradient tape of this thread (variables stay watched).

  Public `tf.GradientTape.stop_recording` pauses one tape the caller owns;
  a library call made under the user's tapes has no handle on them.
  """
  with record.stop_recording():
    yield


def variable_accessed(variable) -> None:
  """Reports a read of `variable` to the tapes and variable watchers.

  Ops that read a variable through its raw handle (an imported graph, a
  traced function called later) bypass the Variable API that reports reads;
  there is no public call to report one.
  """
  resource_variable_ops.variable_accessed(variable)
