"""Stand-ins for TPU modules that TensorFlow 2.16+ removed.

Rules of this file: every attribute of these modules raises
`NotImplementedError` naming the removed symbol when it is used, never at
import, so that `tensorflow_estimator` (which imports them at top level for
TPUEstimator) imports, and only TPU code paths fail.  There is no TPU here.
"""

import types
from typing import Dict

REMOVED_MODULES = (
    "tensorflow.python.tpu.session_support",
    "tensorflow.python.tpu.tpu_embedding",
    "tensorflow.python.tpu.tpu_embedding_gradient",
)


class _Removed(object):
  """A placeholder for a symbol of a removed TPU module."""

  def __init__(self, qualified_name: str):
    self._name = qualified_name

  def _fail(self, *unused_args, **unused_kwargs):
    raise NotImplementedError(
        "%s was removed from TensorFlow; TPUEstimator's embedding and session "
        "support are not available on this TensorFlow (hub_tf1's Estimator "
        "layer supports CPU/GPU Estimators only)." % self._name)

  __call__ = _fail

  def __getattr__(self, attr):
    if attr.startswith("__"):
      raise AttributeError(attr)
    return _Removed(self._name + "." + attr)


class _RemovedModule(types.ModuleType):

  def __getattr__(self, attr):
    if attr.startswith("__"):
      raise AttributeError(attr)
    return _Removed(self.__name__ + "." + attr)


def modules() -> Dict[str, types.ModuleType]:
  """Returns one placeholder module per removed TPU module name."""
  return {name: _RemovedModule(name) for name in REMOVED_MODULES}
