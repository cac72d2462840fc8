"""Estimator integration of hub_tf1 (tf.estimator, TensorFlow <= 2.15).

* `register_module_for_export`, `LatestModuleExporter`: write fine-tuned
  modules from Estimator checkpoints (exporter.py).
* `text_embedding_column`, `sparse_text_embedding_column`,
  `image_embedding_column`: hub modules as feature columns (feature_columns.py).
* `estimator_integration.cluster`: a local parameter-server cluster launcher;
  `estimator_integration.demo`: the end-to-end demo job.

Importing this package raises `ImportError` when TensorFlow has no Estimator
(2.16 and later); `hub_tf1` re-exports these names lazily (see its
`__getattr__`), so this package imports the core and never the reverse.
"""

# Before anything touches tf.estimator: on TF >= 2.16 this makes it exist.
from estimator_integration import compat
compat.install()

# pylint: disable=g-import-not-at-top,wrong-import-position
from estimator_integration.exporter import LatestModuleExporter
from estimator_integration.exporter import register_module_for_export
from estimator_integration.feature_columns import image_embedding_column
from estimator_integration.feature_columns import sparse_text_embedding_column
from estimator_integration.feature_columns import text_embedding_column

__all__ = [
    "LatestModuleExporter",
    "image_embedding_column",
    "register_module_for_export",
    "sparse_text_embedding_column",
    "text_embedding_column",
]
