"""Helpers for image modules: expected input size and channels."""

from typing import List

from hub_tf1.format import protos
from hub_tf1.spec import create

IMAGE_MODULE_INFO_KEY = "image_module_info"

ImageModuleInfo = protos.ImageModuleInfo


def attach_image_module_info(image_module_info=None) -> None:
  """Attaches an ImageModuleInfo to the module being built by module_fn."""
  create.attach_message(IMAGE_MODULE_INFO_KEY,
                        image_module_info or ImageModuleInfo())


def _image_shape(module_or_spec, signature, input_name):
  input_name = input_name or "images"
  signature = signature or "default"
  inputs = module_or_spec.get_input_info_dict(signature)
  if input_name not in inputs:
    raise ValueError("Module is missing input '%s' in signature '%s'."
                     % (input_name, signature))
  shape = inputs[input_name].get_shape()
  if shape.rank != 4:
    raise ValueError("Input '%s' of signature '%s' must have shape [batch, "
                     "height, width, channels], got %s." % (
                         input_name, signature, shape))
  return shape.as_list()


def get_expected_image_size(module_or_spec, signature=None,
                            input_name=None) -> List[int]:
  """[height, width] the module expects, from its ImageModuleInfo or input.

  Raises:
    ValueError: neither the attached info nor the input shape tells.
  """
  info = module_or_spec.get_attached_message(IMAGE_MODULE_INFO_KEY,
                                             ImageModuleInfo)
  if info and info.default_image_size.height and info.default_image_size.width:
    return [info.default_image_size.height, info.default_image_size.width]
  shape = _image_shape(module_or_spec, signature, input_name)
  height, width = shape[1], shape[2]
  if not height or not width:
    raise ValueError("Image size of input '%s' is not known from the module "
                     "(shape %s) and no image_module_info is attached."
                     % (input_name or "images", shape))
  return [height, width]


def get_num_image_channels(module_or_spec, signature=None,
                           input_name=None) -> int:
  """Number of color channels the module's image input expects."""
  shape = _image_shape(module_or_spec, signature, input_name)
  if shape[3] is None:
    raise ValueError("Number of channels of input '%s' is not known: shape "
                     "%s." % (input_name or "images", shape))
  return shape[3]
