"""Creating a module instance's state (variables, tables) in the caller's graph.

Only what the state needs is imported: the state ops, their snapshot reads,
table initializers, every asset path, and, for a spec without a checkpoint,
the variables' initial-value sub-graphs.

With a checkpoint, each variable's initializer assigns it from a `RestoreV2`:
* Variables on a device of this process (no `/job:` in the device, the
  single-machine case): one `RestoreV2` per device reads every variable
  placed there, on that device, straight from disk.
* Variables on a device of another task (`/job:ps/...`): that task may not
  be able to read the module's files (its own disk, another user; hub#48).
  The checkpoint is read where the graph is built instead: each such
  read of at most REMOTE_READ_BYTES (one tensor if it is larger) gets a
  `RestoreV2` of its own, placed by the caller's device functions (under
  `replica_device_setter`: the worker or chief device), and the reads run
  one after another (each waits for the previous one's assigns), so the
  reader holds one read's tensors at a time, not the whole module.
  What travels to the ps task is each tensor's value, once, at
  initialization (the chief runs the initializers).
  That costs network time where the ps task could have read its own disk
  (bench/RESULTS_cluster.md: 1 GB in 2 ps tasks, 2.0 s against 0.6 s), so
  it is done only where a ps task may not see the files: by default
  ("auto") for a checkpoint on a local path; one on a file system every task
  reaches (gs://, hdfs://, s3://, ...: any scheme but file:// and ram://)
  is restored on the variable's device, as the original does.
  $HUB_TF1_REMOTE_RESTORE=here or =device forces one way for all.
"""

import collections
import dataclasses
import os
from typing import Dict, List, Set, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import variable_pb2

from hub_tf1 import _tf_internal
from hub_tf1 import fileio
from hub_tf1.format import checkpoint_check
from hub_tf1.format import variables as variables_lib
from hub_tf1.module import graph_analysis

GraphKeys = tf.compat.v1.GraphKeys


@dataclasses.dataclass
class ModuleState:
  """What one `Module` instance created in the caller's graph."""
  scope: str  # Absolute scope, no trailing slash.
  state_tensors: Dict[str, tf.Tensor]  # "<node>:0" in the module graph.
  variable_map: Dict[str, object]  # key -> Variable, or list of parts.
  variables: List[tf.Variable]
  # Made through a distribution strategy (replicas.py): "<node>:0" ->
  # (is_resource, the variable's per-replica components); else empty.
  replica_components: Dict[str, Tuple[bool, List[tf.Variable]]] = (
      dataclasses.field(default_factory=dict))


def rewrite_shared_names(graph_def, prefix: str) -> None:
  """Prefixes non-empty `shared_name`s so instances never share resources."""
  for node in graph_def.node:
    if "shared_name" in node.attr and node.attr["shared_name"].s:
      node.attr["shared_name"].s = tf.compat.as_bytes(
          prefix + "/") + node.attr["shared_name"].s


def import_sub_graph(graph_def, scope: str, input_map=None,
                     implicit_colocation=()) -> None:
  """Imports `graph_def` with every node under the absolute `scope`.

  Args:
    graph_def: from `GraphAnalysis.sub_graph_def`.
    scope: absolute name scope, no trailing slash.
    input_map: as for `tf.compat.v1.import_graph_def`.
    implicit_colocation: nodes of `graph_def` (as named there) whose
      `_class` attribute is only the self-colocation marker that
      `sub_graph_def` adds to speed up the import; it is removed after the
      import, so these ops carry no `_class` (like the original's).
  """
  ops = tf.compat.v1.import_graph_def(
      graph_def, input_map=input_map or None,
      return_elements=list(implicit_colocation) or None, name=scope + "/")
  for op in ops or ():
    _tf_internal.clear_attr(op, "_class")


def restore_contexts(graph: tf.Graph, contexts, scope: str) -> None:
  """Recreates the TF1 control-flow contexts of imported ops."""
  for context in contexts:
    restored = _tf_internal.restore_control_flow_context(
        context.kind, context.proto, scope)
    graph.add_to_collection(context.kind, restored)


def _state_node_names(analysis, use_checkpoint: bool,
                      trainable: bool) -> Set[str]:
  roots = set(analysis.state_nodes)
  for parts in analysis.variable_parts.values():
    for part in parts:
      vdef = part.variable_def
      roots.add(graph_analysis.node_of(vdef.snapshot_name))
      if not use_checkpoint:
        roots.add(graph_analysis.node_of(vdef.initializer_name))
        if vdef.initial_value_name:
          roots.add(graph_analysis.node_of(vdef.initial_value_name))
  roots.update(analysis.table_initializers)
  roots.update(graph_analysis.node_of(t) for t in analysis.asset_tensors)
  if trainable:
    roots.update(graph_analysis.node_of(t)
                 for t in analysis.regularization_losses)
  return analysis.closure(roots)


def _restore_graph_def(graph: tf.Graph, scope: str, sub_scope: str,
                       parts_by_key, checkpoint_path: str):
  """The restore nodes as a GraphDef, with an input map to the variables.

  Building the nodes as protos and importing them in one call avoids creating
  hundreds of ops one by one through the Python op API.
  Each assign carries its variable's colocation group, so the importer puts
  it (and keeps it) on the variable's device.

  Returns:
    (graph_def, input_map, assign node names in graph_def, part node names).
  """
  by_device = collections.defaultdict(list)
  for key, parts in parts_by_key.items():
    for part in parts:
      op = graph.get_operation_by_name("%s/%s" % (scope, part.node_name))
      by_device[op.device].append((key, part, op))
  graph_def = tf.compat.v1.GraphDef()
  input_map, assigns, part_names = {}, [], []
  prefix = tf.compat.as_bytes("loc:@%s/" % scope)
  # (restore node name, device, entries, remote): one per local device, one
  # per chunk of variable parts on other tasks read here (remote; device ""
  # leaves it to device functions).
  reads = []
  read_here = _reads_remote_here(checkpoint_path)
  for device in sorted(by_device):
    if read_here and _on_other_task(device):
      for chunk in _chunks(by_device[device]):
        reads.append(("%s/read_%d" % (sub_scope, len(reads)), "", chunk,
                      True))
    else:
      reads.append(("%s/restore_%d" % (sub_scope, len(reads)), device,
                    by_device[device], False))
  previous_remote_assigns, remote_assigns = [], []
  for restore, device, entries, remote in reads:
    for field, value in (
        ("prefix", checkpoint_path),  # A scalar, as RestoreV2 requires.
        ("tensor_names", [key for key, _, _ in entries]),
        ("shape_and_slices", [part.slice_spec() for _, part, _ in entries])):
      const = graph_def.node.add(name="%s/%s" % (restore, field), op="Const",
                                 device=device)
      const.attr["dtype"].type = tf.string.as_datatype_enum
      const.attr["value"].tensor.CopyFrom(
          tf.make_tensor_proto(value, dtype=tf.string))
    node = graph_def.node.add(name=restore, op="RestoreV2", device=device)
    node.input.extend("%s/%s" % (restore, f)
                      for f in ("prefix", "tensor_names", "shape_and_slices"))
    node.attr["dtypes"].list.type.extend(part.dtype for _, part, _ in entries)
    if remote:
      node.input.extend("^" + a for a in previous_remote_assigns)
      remote_assigns = []
    for i, (_, part, op) in enumerate(entries):
      variable = "%s/variable_%d" % (sub_scope, len(assigns))
      input_map[variable] = op.outputs[0]
      assign = graph_def.node.add(name="%s/assign_%d" % (sub_scope,
                                                         len(assigns)))
      assign.input.extend([variable, "%s:%d" % (restore, i)])
      if part.is_resource:
        assign.op = "AssignVariableOp"
        assign.attr["dtype"].type = part.dtype
      else:
        assign.op = "Assign"
        assign.attr["T"].type = part.dtype
        assign.attr["validate_shape"].b = True
        assign.attr["use_locking"].b = True
      # The importer prefixes these again; the state import put every group
      # of a state op under the scope.
      assign.attr["_class"].list.s.extend(
          b"loc:@" + g[len(prefix):] for g in op.colocation_groups()
          if g.startswith(prefix))
      assigns.append(assign.name)
      part_names.append(part.node_name)
      if remote:
        remote_assigns.append(assign.name)
    if remote:
      previous_remote_assigns = remote_assigns
  return graph_def, input_map, assigns, part_names


# Reads for variables on other tasks hold at most this many bytes (a larger
# tensor is read alone): the reader's extra memory, and few round trips for
# modules of many small variables.
REMOTE_READ_BYTES = 32 << 20


def _chunks(entries):
  """Splits (key, part, op) entries into runs of <= REMOTE_READ_BYTES."""
  chunk, size = [], 0
  for entry in entries:
    part = entry[1]
    nbytes = tf.dtypes.as_dtype(part.dtype).size * int(
        np.prod(part.shape, dtype=np.int64))
    if chunk and size + nbytes > REMOTE_READ_BYTES:
      yield chunk
      chunk, size = [], 0
    chunk.append(entry)
    size += nbytes
  if chunk:
    yield chunk


REMOTE_RESTORE_ENV = "HUB_TF1_REMOTE_RESTORE"
_REMOTE_RESTORE_CHOICES = ("auto", "here", "device")
# Schemes of file systems that exist only on (or in) this machine.
_LOCAL_SCHEMES = ("", "file", "ram")


def _reads_remote_here(checkpoint_path: str) -> bool:
  """Whether variables on other tasks are restored by reads made here.

  Raises:
    ValueError: $HUB_TF1_REMOTE_RESTORE is not auto, here or device.
  """
  choice = os.environ.get(REMOTE_RESTORE_ENV, "") or "auto"
  if choice not in _REMOTE_RESTORE_CHOICES:
    raise ValueError("$%s=%r: expected one of %s." % (
        REMOTE_RESTORE_ENV, choice, ", ".join(_REMOTE_RESTORE_CHOICES)))
  if choice != "auto":
    return choice == "here"
  return fileio.url_scheme(checkpoint_path).lower() in _LOCAL_SCHEMES


def _on_other_task(device: str) -> bool:
  """Whether `device` names a task (`/job:...`), maybe not this process."""
  return bool(tf.DeviceSpec.from_string(device or "").job)


def _restore_initializers(graph: tf.Graph, scope: str, parts_by_key,
                          checkpoint_path: str) -> Dict[str, str]:
  """Builds one RestoreV2 per variable device; returns node -> init op name.

  The initializer names are relative to `scope`.
  """
  with graph.name_scope(scope + "/"):
    sub_scope = graph.unique_name("checkpoint_restore")[len(scope) + 1:]
  graph_def, input_map, assigns, part_names = _restore_graph_def(
      graph, scope, sub_scope, parts_by_key, checkpoint_path)
  # The public import_graph_def insists that colocation targets are in the
  # imported GraphDef; here they are the variables already in the graph.
  ops = _tf_internal.import_graph_def_unchecked_colocation(
      graph_def, input_map, assigns, scope + "/")
  return {name: op.name[len(scope) + 1:] for name, op in zip(part_names, ops)}


def _make_variable(part, scope: str, initializer_name=None) -> tf.Variable:
  vdef = variable_pb2.VariableDef()
  vdef.CopyFrom(part.variable_def)
  if initializer_name:
    vdef.initializer_name = initializer_name
    vdef.ClearField("initial_value_name")
  return _tf_internal.variable_from_def(vdef, part.is_resource, scope)


def add_state_collections(graph: tf.Graph, analysis, scope: str,
                          names: Set[str], trainable: bool):
  """Lists an imported state's ops in the graph's collections.

  Table initializers, the asset paths among `names` (the imported nodes)
  and, when `trainable`, the regularization losses.

  Returns:
    A function from a name relative to `scope` to the graph element.
  """

  def imported(name):
    return graph.as_graph_element("%s/%s" % (scope, name))

  for name in analysis.table_initializers:
    graph.add_to_collection(GraphKeys.TABLE_INITIALIZERS, imported(name))
  for name in analysis.asset_tensors:
    if graph_analysis.node_of(name) in names:
      graph.add_to_collection(GraphKeys.ASSET_FILEPATHS, imported(name))
  if trainable:
    for name in analysis.regularization_losses:
      graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, imported(name))
  return imported


def create_state(spec, tags, scope: str, trainable: bool) -> ModuleState:
  """Imports the state of `spec`'s variant `tags` under the absolute `scope`."""
  graph = tf.compat.v1.get_default_graph()
  analysis = graph_analysis.analysis_for(spec, tags)
  use_checkpoint = bool(spec.checkpoint_path and analysis.variable_parts)
  if use_checkpoint:  # Index only: fail here, not on a ps task later.
    checkpoint_check.check_variables(spec.checkpoint_path,
                                     analysis.variable_parts, scope)
  names = _state_node_names(analysis, use_checkpoint, trainable)
  # No self-colocation markers: clearing them again would also clear the
  # groups of a caller's colocate_with, and they save nothing measurable on
  # a one-time import (the 200-layer MLP: 0.079-0.081 s either way).
  graph_def = analysis.sub_graph_def(names, self_colocation=False)
  rewrite_shared_names(graph_def, scope)
  import_sub_graph(graph_def, scope)
  restore_contexts(graph, analysis.contexts_within(names), scope)

  initializers = {}
  if use_checkpoint:
    initializers = _restore_initializers(graph, scope, analysis.variable_parts,
                                         spec.checkpoint_path)
  variable_map, variables = {}, []
  for key in sorted(analysis.variable_parts):
    parts = analysis.variable_parts[key]
    created = [_make_variable(p, scope, initializers.get(p.node_name))
               for p in parts]
    for part, variable in zip(parts, created):
      graph.add_to_collection(GraphKeys.GLOBAL_VARIABLES, variable)
      if part.node_name in analysis.model_variables:
        graph.add_to_collection(GraphKeys.MODEL_VARIABLES, variable)
      if trainable and part.trainable:
        graph.add_to_collection(GraphKeys.TRAINABLE_VARIABLES, variable)
    is_partitioned = len(parts) > 1 or parts[0].is_slice
    variable_map[key] = created if is_partitioned else created[0]
    variables.extend(created)

  imported = add_state_collections(graph, analysis, scope, names, trainable)
  state_tensors = {"%s:0" % n: imported("%s:0" % n)
                   for n in analysis.state_nodes}
  return ModuleState(scope=scope, state_tensors=state_tensors,
                     variable_map=variable_map, variables=variables)
