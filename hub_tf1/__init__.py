"""hub_tf1: the TF1 Hub format (`hub.Module` and friends) for tf.compat.v1.

A drop-in replacement for the TF1 API of tensorflow_hub 0.15:

    import hub_tf1 as hub
    module = hub.Module("/path/or/url/of/module")
"""

from hub_tf1.format.protos import ImageModuleInfo
from hub_tf1.inspection.scan import UnsafeModuleError
from hub_tf1.module.eval_function import eval_function_for_module
from hub_tf1.module.module import Module
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

_ESTIMATOR_NAMES = ("LatestModuleExporter", "register_module_for_export",
                    "text_embedding_column", "sparse_text_embedding_column",
                    "image_embedding_column")

try:
  # pylint: disable=g-import-not-at-top
  from estimator_integration import LatestModuleExporter
  from estimator_integration import image_embedding_column
  from estimator_integration import register_module_for_export
  from estimator_integration import sparse_text_embedding_column
  from estimator_integration import text_embedding_column
  _ESTIMATOR_ERROR = None
except ImportError as e:  # TensorFlow >= 2.16 has no tf.estimator.
  _ESTIMATOR_ERROR = e


def __getattr__(name):
  if name in _ESTIMATOR_NAMES:
    raise AttributeError(
        "hub_tf1.%s needs tf.estimator, which this TensorFlow does not have "
        "(%s). Use TensorFlow 2.15 with tf-estimator-nightly for the "
        "Estimator integration." % (name, _ESTIMATOR_ERROR))
  raise AttributeError("module 'hub_tf1' has no attribute %r" % name)
