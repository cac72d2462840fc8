"""Helpers for image modules: expected input size and channels."""

from typing import List

import tensorflow as tf

from hub_tf1.format import protos
from hub_tf1.spec import create

IMAGE_MODULE_INFO_KEY = "image_module_info"

ImageModuleInfo = protos.ImageModuleInfo


def attach_image_module_info(image_module_info=None) -> None:
  """Attaches an ImageModuleInfo to the module being built by module_fn.

  Args:
    image_module_info: an ImageModuleInfo (default: an empty one).

  Raises:
    ValueError: called outside a module_fn of `create_module_spec`.
  """
  create.attach_message(IMAGE_MODULE_INFO_KEY,
                        image_module_info or ImageModuleInfo())


def _image_shape(module_or_spec, signature, input_name, known: str):
  input_name = input_name or "images"
  signature = signature or "default"
  inputs = module_or_spec.get_input_info_dict(signature)
  if input_name not in inputs:
    raise ValueError("Module is missing input '%s' in signature '%s'."
                     % (input_name, signature))
  shape = inputs[input_name].get_shape()
  if shape.rank != 4:
    raise ValueError("Shape of module input is %s, expected [batch_size, "
                     "height, width, num_channels] with known %s (input '%s' "
                     "of signature '%s')." % (shape, known, input_name,
                                              signature))
  return shape.as_list()


def get_expected_image_size(module_or_spec, signature=None,
                            input_name=None) -> List[int]:
  """[height, width] the module expects, from its ImageModuleInfo or input.

  Args:
    module_or_spec: a Module or ModuleSpec.
    signature: the signature to look at; None means "default".
    input_name: its image input; None means "images".

  Returns:
    [height, width] as ints.

  Raises:
    ValueError: no such input, an input that is not [batch, height, width,
      channels], or neither the attached info nor the input shape tells.
  """
  info = module_or_spec.get_attached_message(IMAGE_MODULE_INFO_KEY,
                                             ImageModuleInfo)
  if info and info.default_image_size.height and info.default_image_size.width:
    return [info.default_image_size.height, info.default_image_size.width]
  shape = _image_shape(module_or_spec, signature, input_name,
                       "height and width")
  height, width = shape[1], shape[2]
  if not height or not width:
    raise ValueError("Shape of module input is %s, expected [batch_size, "
                     "height, width, num_channels] with known height and "
                     "width. (Input '%s' does not tell the image size and no "
                     "image_module_info is attached.)"
                     % (tf.TensorShape(shape), input_name or "images"))
  return [height, width]


def get_num_image_channels(module_or_spec, signature=None,
                           input_name=None) -> int:
  """Number of color channels the module's image input expects.

  Args:
    module_or_spec: a Module or ModuleSpec.
    signature: the signature to look at; None means "default".
    input_name: its image input; None means "images".

  Returns:
    The size of the input's last dimension.

  Raises:
    ValueError: no such input, or its shape does not fix the channels.
  """
  shape = _image_shape(module_or_spec, signature, input_name,
                       "num_channels")
  if shape[3] is None:
    raise ValueError("Shape of module input is %s, expected [batch_size, "
                     "height, width, num_channels] with known num_channels "
                     "(input '%s')." % (tf.TensorShape(shape),
                                        input_name or "images"))
  return shape[3]
