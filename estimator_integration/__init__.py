"""Estimator integration of hub_tf1 (tf.estimator; on TF >= 2.16 via compat/).

* `register_module_for_export`, `LatestModuleExporter`: write fine-tuned
  modules from Estimator checkpoints (exporter.py).
* `text_embedding_column`, `sparse_text_embedding_column`,
  `image_embedding_column`: hub modules as feature columns (feature_columns.py).
* `estimator_integration.compat`: the last Estimator wheel on TF 2.16-2.21.

The names above are imported on first use (PEP 562), so that importing
`estimator_integration.compat` (which `hub_tf1/__init__.py` does) imports
nothing of the core.  A module of this package that needs the Estimator
raises `ImportError` naming what to install when there is none.

The end-to-end demo lives in examples/estimator_demo and the local cluster
launcher in tools/local_cluster.py; neither is part of this package.
"""

import importlib

# Before anything touches tf.estimator: on TF >= 2.16 this makes it exist.
from estimator_integration import compat
compat.install(required=False)

_LAZY_NAMES = {
    "LatestModuleExporter": "estimator_integration.exporter",
    "register_module_for_export": "estimator_integration.exporter",
    "image_embedding_column": "estimator_integration.feature_columns",
    "sparse_text_embedding_column": "estimator_integration.feature_columns",
    "text_embedding_column": "estimator_integration.feature_columns",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str):
  """Imports one of `__all__` on first use.

  Args:
    name: the attribute asked for.

  Returns:
    The object, cached in this package for later lookups.

  Raises:
    AttributeError: `name` is not one of `__all__`.
    ImportError: this TensorFlow has no Estimator (the message says what to
      install).
  """
  module_name = _LAZY_NAMES.get(name)
  if module_name is None:
    raise AttributeError(
        "module 'estimator_integration' has no attribute %r" % name)
  value = getattr(importlib.import_module(module_name), name)
  globals()[name] = value
  return value
