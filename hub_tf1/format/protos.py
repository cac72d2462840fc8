"""The three protos of the TF1 Hub format, built at import time.

The messages are declared here as descriptors instead of generated `_pb2`
code so that one source works with every protobuf runtime TensorFlow 2.15
to 2.21 brings (4.x to 7.x).  They live in a private descriptor pool: the
full names (`tensorflow_hub.ModuleDef` ...) are the format's, and a process
that also imports tensorflow_hub does not see a clash.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

_F = descriptor_pb2.FieldDescriptorProto

_PACKAGE = "tensorflow_hub"


def _field(message, name, number, field_type, label=_F.LABEL_OPTIONAL,
           type_name=None):
  field = message.field.add(name=name, number=number, type=field_type,
                            label=label)
  if type_name:
    field.type_name = type_name


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
  """Describes ModuleDef, ModuleAttachment and ImageModuleInfo (proto3)."""
  f = descriptor_pb2.FileDescriptorProto(
      name="hub_tf1/format/tf1_hub_format.proto", package=_PACKAGE,
      syntax="proto3")

  module_def = f.message_type.add(name="ModuleDef")
  fmt = module_def.enum_type.add(name="Format")
  fmt.value.add(name="FORMAT_UNSPECIFIED", number=0)
  fmt.value.add(name="FORMAT_V3", number=3)
  _field(module_def, "format", 1, _F.TYPE_ENUM,
         type_name=".%s.ModuleDef.Format" % _PACKAGE)
  _field(module_def, "required_features", 2, _F.TYPE_STRING,
         label=_F.LABEL_REPEATED)

  attachment = f.message_type.add(name="ModuleAttachment")
  _field(attachment, "key", 1, _F.TYPE_STRING)
  _field(attachment, "value", 2, _F.TYPE_BYTES)

  image_info = f.message_type.add(name="ImageModuleInfo")
  input_size = image_info.nested_type.add(name="InputSize")
  _field(input_size, "height", 1, _F.TYPE_INT32)
  _field(input_size, "width", 2, _F.TYPE_INT32)
  input_size.reserved_range.add(start=3, end=4)
  _field(image_info, "default_image_size", 1, _F.TYPE_MESSAGE,
         type_name=".%s.ImageModuleInfo.InputSize" % _PACKAGE)
  return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_proto())


def _message_class(name: str):
  descriptor = _POOL.FindMessageTypeByName("%s.%s" % (_PACKAGE, name))
  return message_factory.GetMessageClass(descriptor)


ModuleDef = _message_class("ModuleDef")
ModuleAttachment = _message_class("ModuleAttachment")
ImageModuleInfo = _message_class("ImageModuleInfo")

# The only format version that exists.
FORMAT_V3 = 3
