"""Signature inputs and outputs: TensorInfo protos <-> tensors and specs.

A signature entry is a dense Tensor (`name` encoding), a SparseTensor
(`coo_sparse`) or a RaggedTensor (`composite_tensor`).  This module turns
the protos into `ParsedTensorInfo` objects, lists the graph tensors behind
each entry and checks and converts the values callers pass.
"""

from typing import Dict, List, Mapping

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1 import _tf_internal

_SUPPORTED_TYPES = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)


class ParsedTensorInfo(object):
  """What a signature says about one of its inputs or outputs."""

  def __init__(self, type_spec: tf.TypeSpec, is_sparse: bool,
               is_supported_type: bool = True):
    """Describes a tensor by its TypeSpec (usually made by `from_proto`).

    Args:
      type_spec: a TensorSpec, SparseTensorSpec or other TypeSpec.
      is_sparse: whether the value is a SparseTensor.
      is_supported_type: False for composite types this version cannot feed
        or return (only RaggedTensor composites are supported).
    """
    self._type_spec = type_spec
    self._is_sparse = is_sparse
    self._is_supported_type = is_supported_type

  @classmethod
  def from_proto(cls, info: meta_graph_pb2.TensorInfo) -> "ParsedTensorInfo":
    """Parses a signature's TensorInfo (dense, COO sparse or composite).

    Args:
      info: a `meta_graph_pb2.TensorInfo` of a SignatureDef.

    Returns:
      The ParsedTensorInfo.
    """
    dtype = tf.as_dtype(info.dtype) if info.dtype else None
    shape = tf.TensorShape(info.tensor_shape)
    encoding = info.WhichOneof("encoding")
    if encoding == "coo_sparse":
      return cls(tf.SparseTensorSpec(shape, dtype), is_sparse=True)
    if encoding == "composite_tensor":
      spec = _tf_internal.decode_type_spec(info.composite_tensor.type_spec)
      return cls(spec, is_sparse=False,
                 is_supported_type=isinstance(spec, tf.RaggedTensorSpec))
    return cls(tf.TensorSpec(shape, dtype), is_sparse=False)

  @property
  def dtype(self) -> tf.DType:
    """The element dtype (None when the signature does not record one)."""
    return self._type_spec.dtype

  def get_shape(self) -> tf.TensorShape:
    """The static shape (for a SparseTensor: its dense shape)."""
    return self._type_spec.shape

  @property
  def is_sparse(self) -> bool:
    """Whether the value is a SparseTensor."""
    return self._is_sparse

  @property
  def is_composite(self) -> bool:
    """Whether the value is anything but a dense Tensor."""
    return not isinstance(self._type_spec, tf.TensorSpec)

  @property
  def type_spec(self) -> tf.TypeSpec:
    """The TypeSpec of the value."""
    return self._type_spec

  @property
  def is_supported_type(self) -> bool:
    """Whether Module calls can feed or return this type."""
    return self._is_supported_type

  def __repr__(self):
    if isinstance(self._type_spec, tf.RaggedTensorSpec):
      return "<hub.ParsedTensorInfo type_spec=%r>" % (self._type_spec,)
    return "<hub.ParsedTensorInfo shape=%s dtype=%s is_sparse=%s>" % (
        self.get_shape(), self.dtype.name, self.is_sparse)


def parse_map(
    protos: Mapping[str, meta_graph_pb2.TensorInfo]) -> Dict[str, ParsedTensorInfo]:
  return {key: ParsedTensorInfo.from_proto(info) for key, info in protos.items()}


def component_names(info: meta_graph_pb2.TensorInfo) -> List[str]:
  """Graph tensor names behind one entry, in the order values flatten to."""
  encoding = info.WhichOneof("encoding")
  if encoding == "coo_sparse":
    coo = info.coo_sparse
    return [coo.indices_tensor_name, coo.values_tensor_name,
            coo.dense_shape_tensor_name]
  if encoding == "composite_tensor":
    return [c.name for c in info.composite_tensor.components]
  return [info.name]


def flatten_value(value) -> List[tf.Tensor]:
  """The component tensors of a value, matching `component_names` order."""
  if isinstance(value, tf.SparseTensor):
    return [value.indices, value.values, value.dense_shape]
  return tf.nest.flatten(value, expand_composites=True)


def pack_value(info: ParsedTensorInfo, components: List[tf.Tensor]):
  """The value (Tensor, SparseTensor or RaggedTensor) of `components`."""
  if info.is_sparse:
    return tf.SparseTensor(*components)
  if info.is_composite:
    return tf.nest.pack_sequence_as(info.type_spec, components,
                                    expand_composites=True)
  return components[0]


def type_name(value) -> str:
  return type(value).__name__


def is_supported_value(value) -> bool:
  return isinstance(value, _SUPPORTED_TYPES)


def convert_input(key: str, value, info: ParsedTensorInfo, signature: str):
  """Converts a caller's value for input `key` and checks it against `info`.

  Raises:
    TypeError: the value has the wrong kind (dense/sparse/ragged), shape or
      dtype, or cannot be converted.
    ValueError: a Tensor of another dtype (TensorFlow's own conversion
      error, with the key and signature added).
  """
  where = "input '%s' of signature '%s'" % (key, signature)
  if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
    tensor = value
  else:
    try:
      tensor = tf.compat.v1.convert_to_tensor_or_indexed_slices(
          value, info.dtype)
    except TypeError as e:
      raise TypeError("Can't convert '%s': %s (%s)" % (key, e, where)) from e
    except ValueError as e:
      raise ValueError("Can't convert '%s': %s (%s, expected dtype %s)"
                       % (key, e, where, info.dtype.name)) from e
  if not is_supported_value(tensor):
    raise ValueError("Can't convert '%s': Passed argument of type %s, which "
                     "is not supported by this version of tensorflow_hub "
                     "(%s)." % (key, type_name(tensor), where))
  expected = info.type_spec
  got = tf.type_spec_from_value(tensor)
  if got.value_type is not expected.value_type:
    raise TypeError("Can't convert '%s': Got %s. Expected %s. (%s)" % (
        key, got.value_type.__name__, expected.value_type.__name__, where))
  if not expected.is_compatible_with(got):
    if isinstance(tensor, tf.Tensor):  # Named after its op, as the original.
      got = tf.TensorSpec.from_tensor(tensor)
    raise TypeError("Can't convert '%s': Got %s. Expected %s. (%s)"
                    % (key, got, expected, where))
  return tensor


def normalize_inputs(inputs, expected: Mapping, signature: str) -> Dict:
  """The inputs of a signature call as a dict keyed like `expected`.

  Args:
    inputs: None (no inputs), a dict, or the one value of a single-input
      signature.
    expected: the signature's input infos, keyed by input name.
    signature: the signature's name, for messages.

  Returns:
    A dict with exactly the keys of `expected`.

  Raises:
    TypeError: a bare value for a signature with no or several inputs, or
      dict keys that are missing or extra (messages as the original's, plus
      the signature).
  """
  if inputs is None:
    inputs = {}
  if not isinstance(inputs, dict):
    if not expected:
      raise TypeError("Signature expects no inputs. (signature '%s' got %r)"
                      % (signature, type(inputs).__name__))
    if len(expected) > 1:
      raise TypeError("Signature expects multiple inputs. Use a dict. "
                      "(signature '%s' has inputs %s)"
                      % (signature, sorted(expected)))
    inputs = {next(iter(expected)): inputs}
  missing = sorted(set(expected) - set(inputs))
  extra = sorted(set(inputs) - set(expected))
  if missing or extra:
    raise TypeError("Cannot convert dict_inputs: missing %s, extra given %s "
                    "(signature '%s')" % (missing, extra, signature))
  return inputs
