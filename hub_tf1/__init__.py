"""hub_tf1: the TF1 Hub format (`hub.Module` and friends) for tf.compat.v1.

A drop-in replacement for the TF1 API of tensorflow_hub 0.15:

    import hub_tf1 as hub
    module = hub.Module("/path/or/url/of/module")
"""

# First, so that a legacy job's `tf.estimator` exists on TF >= 2.16 whichever
# of `import tensorflow` and `import hub_tf1` comes first.  The compat package
# imports only TensorFlow (it sits below the core: docs/ARCHITECTURE.md) and
# nothing of the Estimator until it is used.
from estimator_integration import compat as _estimator_compat
_estimator_compat.install(required=False)

# pylint: disable=g-import-not-at-top,wrong-import-position

from hub_tf1.errors import Error
from hub_tf1.format.protos import ImageModuleInfo
from hub_tf1.inspection.scan import UnsafeModuleError
from hub_tf1.module.eval_function import eval_function_for_module
from hub_tf1.module.module import Module
from hub_tf1.resolving import register_resolver
from hub_tf1.resolving import resolve
from hub_tf1.spec.create import add_signature
from hub_tf1.spec.create import attach_message
from hub_tf1.spec.create import create_module_spec
from hub_tf1.spec.image import attach_image_module_info
from hub_tf1.spec.image import get_expected_image_size
from hub_tf1.spec.image import get_num_image_channels
from hub_tf1.spec.loading import load_module_spec
from hub_tf1.spec.module_spec import ModuleSpec
from hub_tf1.spec.tensor_info import ParsedTensorInfo

__version__ = "0.1.0"

# Names defined by later layers, imported on first use (PEP 562), so the core
# never imports the Estimator layer or the TF2 side while it is itself being
# imported: the dependency runs one way, from those layers to the core.
_LAZY_NAMES = {
    "LatestModuleExporter": "estimator_integration.exporter",
    "register_module_for_export": "estimator_integration.exporter",
    "text_embedding_column": "estimator_integration.feature_columns",
    "sparse_text_embedding_column": "estimator_integration.feature_columns",
    "image_embedding_column": "estimator_integration.feature_columns",
    "load": "hub_tf1.tf2.loading",
    "convert": "hub_tf1.tf2.convert",
    "KerasLayer": "hub_tf1.tf2.keras_layer",
    "UnsupportedGraphError": "hub_tf1.tf2.graph_rewrite",
}


def __getattr__(name: str):
  """Imports a name of a later layer (Estimator integration, TF2) on first use.

  Args:
    name: the attribute asked for.

  Returns:
    The object, cached in this module for later lookups.

  Raises:
    AttributeError: `name` is not a hub_tf1 name, or it needs tf.estimator
      and this TensorFlow has none (the message says which and why).
  """
  module_name = _LAZY_NAMES.get(name)
  if module_name is None:
    raise AttributeError("module 'hub_tf1' has no attribute %r" % name)
  # pylint: disable=g-import-not-at-top
  import importlib
  from hub_tf1 import _estimator_check
  # pylint: enable=g-import-not-at-top
  try:
    value = getattr(importlib.import_module(module_name), name)
  except ImportError as e:
    # Only the one real reason becomes "needs tf.estimator"; any other
    # ImportError of a later layer is a bug and surfaces as it is.
    missing = (module_name.startswith("estimator_integration.") and
               _estimator_check.missing_reason())
    if not missing:
      raise
    raise AttributeError("hub_tf1.%s needs tf.estimator: %s (%s)" %
                         (name, missing, e)) from e
  globals()[name] = value
  return value
