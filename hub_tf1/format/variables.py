"""The variables of a module graph, as its `variables` collection lists them.

Keys are module-relative names without `:0` (`w`, `layer/kernel`); they are
the checkpoint keys and the keys of `Module.variable_map`.  A partitioned
variable is one key whose parts (`emb/part_0`, ...) carry a SaveSliceInfoDef
with their offset along axis 0.
"""

import collections
import dataclasses
from typing import Dict, List, Tuple

from tensorflow.core.framework import variable_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1.format import meta_graph as meta_graph_lib


@dataclasses.dataclass(frozen=True)
class VariablePart:
  """One variable node of the graph (a whole variable or one partition)."""
  variable_def: variable_pb2.VariableDef
  node_name: str
  dtype: int  # DataType enum of the variable's values.
  shape: Tuple[int, ...]
  full_shape: Tuple[int, ...]
  offset: Tuple[int, ...]  # Offset in the full tensor; zeros when whole.
  trainable: bool

  @property
  def is_resource(self) -> bool:
    return self.variable_def.is_resource

  @property
  def is_slice(self) -> bool:
    return self.variable_def.HasField("save_slice_info_def")

  def slice_spec(self) -> str:
    """The checkpoint slice spec ("" for a whole variable)."""
    if not self.is_slice:
      return ""
    full = " ".join(str(d) for d in self.full_shape)
    ranges = ":".join("%d,%d" % (o, s) for o, s in zip(self.offset, self.shape))
    return "%s %s" % (full, ranges)


def _node_shape(node) -> Tuple[int, ...]:
  dims = node.attr["shape"].shape.dim
  return tuple(int(d.size) for d in dims)


def variable_parts(
    meta_graph: meta_graph_pb2.MetaGraphDef) -> "collections.OrderedDict":
  """Maps each variable key to its parts, ordered by axis-0 offset.

  Raises:
    RuntimeError: inconsistent partitioning (a name used both plainly and
      partitioned, repeated offsets, parts that differ beyond axis 0).
  """
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  trainable = set()
  for serialized in meta_graph_lib.bytes_list(meta_graph,
                                              "trainable_variables"):
    trainable.add(variable_pb2.VariableDef.FromString(serialized).variable_name)
  grouped: Dict[str, List[VariablePart]] = collections.OrderedDict()
  plain = set()
  for serialized in meta_graph_lib.bytes_list(meta_graph, "variables"):
    vdef = variable_pb2.VariableDef.FromString(serialized)
    node_name = vdef.variable_name.split(":")[0]
    node = nodes.get(node_name)
    if node is None:
      raise RuntimeError("Variable %r listed in the module's variables "
                         "collection is not in its graph." % node_name)
    shape = _node_shape(node)
    if vdef.HasField("save_slice_info_def"):
      info = vdef.save_slice_info_def
      key = node_name.rsplit("/", 1)[0] if "/" in node_name else node_name
      if not info.full_name.endswith(key):
        raise RuntimeError("Partitioned variable %r has full name %r, which "
                           "does not end in %r." % (node_name, info.full_name,
                                                    key))
      full_shape = tuple(int(d) for d in info.full_shape)
      offset = tuple(int(d) for d in info.var_offset)
      shape = tuple(int(d) for d in info.var_shape)
    else:
      key = node_name
      full_shape, offset = shape, tuple(0 for _ in shape)
      plain.add(key)
    part = VariablePart(variable_def=vdef, node_name=node_name,
                        dtype=node.attr["dtype"].type, shape=shape,
                        full_shape=full_shape, offset=offset,
                        trainable=vdef.variable_name in trainable)
    grouped.setdefault(key, []).append(part)
  for key, parts in grouped.items():
    if len(parts) > 1 and key in plain:
      raise RuntimeError("Variable %s exists both as a single and "
                         "partitioned variable (in the module's variables "
                         "collection)." % key)
    parts.sort(key=lambda p: p.offset[0] if p.offset else 0)
    offsets = [p.offset[0] if p.offset else 0 for p in parts]
    if len(set(offsets)) != len(offsets):
      raise RuntimeError("Variable map contains duplicate offset %d for "
                         "variable [%s]: only axis-0 partitioning is "
                         "supported." % (next(
                             o for o in offsets if offsets.count(o) > 1), key))
    if len({p.shape[1:] for p in parts}) > 1:
      raise RuntimeError("Shapes not compatible: %s (the parts of "
                         "partitioned variable %r differ in shape beyond "
                         "axis 0)." % ([list(p.shape[1:]) for p in parts],
                                       key))
  return grouped


def checkpoint_entries(
    meta_graph: meta_graph_pb2.MetaGraphDef) -> Dict[str, Tuple[int, Tuple[int, ...]]]:
  """Checkpoint key -> (dtype enum, full shape) of every variable."""
  return {key: (parts[0].dtype, parts[0].full_shape)
          for key, parts in variable_parts(meta_graph).items()}


def partitioning(
    meta_graph: meta_graph_pb2.MetaGraphDef
) -> Dict[str, List[Tuple[Tuple[int, ...], Tuple[int, ...]]]]:
  """Checkpoint key -> [(offset, shape)] of each part of partitioned variables.

  Whole variables are left out: their checkpoint entry is the whole tensor.
  """
  return {key: [(p.offset, p.shape) for p in parts]
          for key, parts in variable_parts(meta_graph).items()
          if parts[0].is_slice}


def variable_names(meta_graph: meta_graph_pb2.MetaGraphDef,
                   collection: str) -> List[str]:
  """Node names of the VariableDefs in a bytes_list variable collection."""
  return [variable_pb2.VariableDef.FromString(s).variable_name.split(":")[0]
          for s in meta_graph_lib.bytes_list(meta_graph, collection)]
