"""Building a ModuleSpec from Python: `create_module_spec` and its helpers.

`module_fn` runs once per tag set, each time in a fresh graph.  While it
runs, `add_signature` and `attach_message` record into a side table keyed by
that graph; afterwards the graph is snapshotted into a MetaGraphDef.
"""

import collections
import weakref
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from hub_tf1 import _tf_internal
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.spec import module_spec as module_spec_lib
from hub_tf1.spec import tensor_info


class _GraphAdditions(object):
  """Signatures and messages recorded for one module_fn graph."""

  def __init__(self):
    self.signatures: Dict[str, meta_graph_pb2.SignatureDef] = (
        collections.OrderedDict())
    self.attachments: Dict[str, bytes] = collections.OrderedDict()


_ADDITIONS: "weakref.WeakKeyDictionary[tf.Graph, _GraphAdditions]" = (
    weakref.WeakKeyDictionary())


def _additions(graph: tf.Graph) -> _GraphAdditions:
  if graph not in _ADDITIONS:
    _ADDITIONS[graph] = _GraphAdditions()
  return _ADDITIONS[graph]


def is_state_op_type(op_type: str) -> bool:
  """Stateful ops without inputs (variables, tables, queues ...) hold state."""
  op_def = _tf_internal.op_def(op_type)
  return bool(op_def and op_def.is_stateful and not op_def.input_arg)


def _as_dict(value) -> Dict[str, object]:
  if value is None:
    return {}
  if isinstance(value, dict):
    return dict(value)
  return {"default": value}


def add_signature(name=None, inputs=None, outputs=None) -> None:
  """Declares a signature of the module that `module_fn` is building.

  Args:
    name: signature name; "default" when empty.
    inputs: a Tensor/SparseTensor/RaggedTensor or a dict of them; a single
      value is stored under the key "default".
    outputs: same, for the outputs.

  Raises:
    ValueError: a value of another type, a value from another graph, an
      input with colocation constraints, or a repeated signature name.
  """
  name = name or "default"
  inputs, outputs = _as_dict(inputs), _as_dict(outputs)
  graph = tf.compat.v1.get_default_graph()
  bad_types, other_graph = [], []
  for role, values in (("input", inputs), ("output", outputs)):
    for key, value in sorted(values.items()):
      if not tensor_info.is_supported_value(value):
        bad_types.append("  * %s '%s' has type %s" % (
            role, key, tensor_info.type_name(value)))
      elif any(t.graph is not graph for t in tensor_info.flatten_value(value)):
        other_graph.append("  * %s '%s' is a tensor of another graph" % (
            role, key))
  if bad_types:
    raise ValueError(
        "The inputs and outputs declared in hub.add_signature() for signature "
        "'%s' should have one of the types that are supported by this version "
        "of tensorflow_hub: Tensor, SparseTensor, RaggedTensor.\n%s" % (
            name, "\n".join(bad_types + other_graph)))
  if other_graph:
    raise ValueError(
        "The inputs and outputs declared in hub.add_signature() for signature "
        "'%s' must be tensors of the graph module_fn builds:\n%s" % (
            name, "\n".join(other_graph)))
  multi_output = []
  for key, value in sorted(inputs.items()):
    for tensor in tensor_info.flatten_value(value):
      if len(tensor.op.outputs) > 1:
        multi_output.append("%s='%s'" % (key, tensor.name))
      groups = tensor.op.colocation_groups()
      if groups != [tf.compat.as_bytes("loc:@" + tensor.op.name)]:
        raise ValueError(
            "A tensor x used as input in a signature must not be subject to "
            "a tf.colocate_with(y) constraint (the reverse is allowed), "
            "because signature inputs are replaced by the caller's tensors: "
            "input '%s' (tensor %s) of signature '%s' is colocated with %s." % (
                key, tensor.name, name, [g.decode() for g in groups]))
  if multi_output:
    logging.error("WARNING: signature '%s' has inputs from ops with several "
                  "outputs: %s. Only the named output is replaced.",
                  name, ", ".join(multi_output))
  additions = _additions(graph)
  if name in additions.signatures:
    raise ValueError("Signature '%s' was added twice to the module." % name)
  signature = meta_graph_pb2.SignatureDef()
  for target, values in ((signature.inputs, inputs),
                         (signature.outputs, outputs)):
    for key, value in values.items():
      target[key].CopyFrom(
          tf.compat.v1.saved_model.utils.build_tensor_info(value))
  additions.signatures[name] = signature


def attach_message(key: str, message) -> None:
  """Attaches a protocol message to the module under `key`.

  The key must match `^[a-zA-Z][a-zA-Z0-9_]*$`.  Attaching the same key
  twice keeps the last message.

  Args:
    key: the name to read it back by (`get_attached_message`).
    message: a protocol message instance.

  Raises:
    ValueError: a malformed key, or called outside a module_fn.
  """
  meta_graph_lib.check_attachment_key(key)
  _additions(tf.compat.v1.get_default_graph()).attachments[key] = (
      message.SerializeToString())


def _check_state_colocation(graph: tf.Graph, tags) -> None:
  """State ops may only be colocated with other state ops."""
  state_ops = {op.name for op in graph.get_operations()
               if is_state_op_type(op.type)}
  for name in sorted(state_ops):
    op = graph.get_operation_by_name(name)
    for group in op.colocation_groups():
      target = tf.compat.as_str(group)[len("loc:@"):]
      if target not in state_ops:
        raise ValueError(
            "A state-holding node x of a module's graph (e.g., a Variable op) "
            "must not be subject to a tf.colocate_with(y) constraint unless y "
            "is also a state-holding node, because state is created apart "
            "from the signatures: state op %s (%s) is colocated with %s, and "
            "%s is not a state op%s." % (
                name, op.type, [tf.compat.as_str(g)
                                for g in op.colocation_groups()], target,
                "" if tags is None else " (graph with tags %s)" % sorted(tags)))


def _snapshot(graph: tf.Graph, tags, drop_collections) -> meta_graph_pb2.MetaGraphDef:
  for key in drop_collections:
    graph.clear_collection(key)
  additions = _additions(graph)
  if not additions.signatures:
    raise ValueError("No signatures present. Please call "
                     "hub.add_signature(...) at least once in the module_fn "
                     "(graph with tags %s)." % sorted(tags))
  meta_graph = tf.compat.v1.train.export_meta_graph(
      graph=graph, strip_default_attrs=True)
  meta_graph.meta_info_def.tags[:] = sorted(tags)
  for name, signature in additions.signatures.items():
    meta_graph.signature_def[name].CopyFrom(signature)
  meta_graph_lib.write_attachments(meta_graph, additions.attachments)
  return meta_graph


def create_module_spec(
    module_fn: Callable[..., None],
    tags_and_args: Optional[Sequence[Tuple[Iterable[str], Dict]]] = None,
    drop_collections: Optional[Sequence[str]] = None,
) -> module_spec_lib.ModuleSpec:
  """Builds a ModuleSpec by calling `module_fn` once per tag set.

  Args:
    module_fn: builds the module graph and calls `hub.add_signature`.
      Variables it creates with `tf.compat.v1.get_variable` are resource
      variables unless it asks otherwise.
    tags_and_args: `[(tags, kwargs), ...]`; each entry calls
      `module_fn(**kwargs)` in a fresh graph stored under the tag set
      `tags`.  Default: one call, no arguments, empty tag set.
    drop_collections: collections to clear before the graph is stored.

  Raises:
    ValueError: no signature, repeated tag sets, state colocation,
      collections the format cannot store.
  """
  explicit = bool(tags_and_args)
  tags_and_args = tags_and_args or [(set(), {})]
  drop_collections = list(drop_collections or [])
  saved_model = saved_model_pb2.SavedModel()
  for tags, kwargs in tags_and_args:
    tags = frozenset(tags or ())
    with tf.Graph().as_default() as graph:
      with tf.compat.v1.variable_scope("", use_resource=True):
        module_fn(**kwargs)
      _check_state_colocation(graph, tags if explicit else None)
      saved_model.meta_graphs.add().CopyFrom(
          _snapshot(graph, tags, drop_collections))
  return module_spec_lib.ModuleSpec(saved_model)
