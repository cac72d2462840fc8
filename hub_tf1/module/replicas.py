"""Module state shared by the replicas (towers) of one graph.

In-graph replication builds the model once per replica in one graph: an
Estimator with `tf.distribute.MirroredStrategy` as `train_distribute` calls
its `model_fn` once per replica (replica k > 0 under name scope
`replica_k/`, in a reusing variable scope), and hand-built towers do the
same under `tf.device` and `variable_scope(..., reuse=True)`.

Rules of this file:
- A `hub.Module` made where the variable scope reuses (`reuse=True`) takes
  the state of a Module made earlier, with the same name, in the same
  variable scope, where the scope did not reuse: the i-th such Module of a
  tower (a thread and the first component of its name scope) gets the i-th
  state of that name, counting modulo the number of such states; so towers
  must make their Modules in the same order, as the strategy's own
  variable sharing requires.  It must have the same tags and trainability.
  With no such state, a new one is made, as without replicas.
- Under a distribution strategy (`tf.distribute.has_strategy()`, graph
  mode, not in a function body), the module's variables are made through
  the strategy's variable creators (`tf.compat.v1.Variable`), under their
  usual names, so the strategy makes them (MirroredVariables under
  MirroredStrategy); they restore from the module's checkpoint (or take the
  module's initial values) as usual.  Each application reads the component
  of the replica it is built in (replica context), the primary one
  elsewhere.  Consumers of a ref variable that need the ref itself (e.g.
  `Assign` in update ops) cannot be fed a distributed variable and fail.
- State-level collections (regularization losses, table initializers,
  asset paths) are filled once per state, by the Module that made it;
  per-application ones (UPDATE_OPS, asset paths of the application) once
  per application, i.e. per tower.  The regularization losses read the
  primary component, as those of `tf.compat.v1.get_variable` do under a
  strategy.
"""

import collections
import dataclasses
import threading
import weakref
from typing import Dict, List, Optional, Set, Tuple

from absl import logging
import tensorflow as tf

from hub_tf1 import _tf_internal
from hub_tf1.format import checkpoint_check
from hub_tf1.module import graph_analysis
from hub_tf1.module import state as state_lib

GraphKeys = tf.compat.v1.GraphKeys
_LOC = b"loc:@"


@dataclasses.dataclass
class _Entry:
  state: state_lib.ModuleState
  tags: frozenset
  trainable: bool


@dataclasses.dataclass
class _Registry:
  # "<variable scope>/<name>" -> states made there without reuse, in order.
  created: Dict[str, List[_Entry]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(list))
  # (tower, base) -> how many of those states the tower has taken.
  taken: Dict[Tuple[object, str], int] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(int))


_REGISTRIES: "weakref.WeakKeyDictionary[tf.Graph, _Registry]" = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()  # Replica threads of a strategy build concurrently.


def _registry(graph: tf.Graph) -> _Registry:
  with _LOCK:
    if graph not in _REGISTRIES:
      _REGISTRIES[graph] = _Registry()
    return _REGISTRIES[graph]


def _base(name: str) -> str:
  outer = tf.compat.v1.get_variable_scope().name
  return "%s/%s" % (outer, name) if outer else name


def _tower(graph: tf.Graph) -> Tuple[int, str]:
  return threading.get_ident(), graph.get_name_scope().split("/")[0]


def shared_state(graph: tf.Graph, name: str, tags,
                 trainable: bool) -> Optional[state_lib.ModuleState]:
  """The state a Module made now should share, or None to make its own.

  Args:
    graph: the graph the Module is made in.
    name: the Module's `name` argument.
    tags: its tag set.
    trainable: its `trainable` argument.

  Returns:
    The state of the corresponding Module of the first tower, when the
    current variable scope reuses and there is one (see the file rules).

  Raises:
    ValueError: that Module has other tags or trainability.
  """
  if tf.compat.v1.get_variable_scope().reuse is not True:
    return None
  base = _base(name)
  registry = _registry(graph)
  with _LOCK:
    entries = registry.created.get(base)
    if not entries:
      logging.info("Module '%s' made in a reusing variable scope has no "
                   "earlier Module to share the state of; making its own.",
                   base)
      return None
    key = (_tower(graph), base)
    entry = entries[registry.taken[key] % len(entries)]
    registry.taken[key] += 1
  if entry.tags != frozenset(tags or ()) or entry.trainable != trainable:
    raise ValueError(
        "Module '%s' made in a reusing variable scope (another replica or "
        "tower) would share the state of Module '%s', but that one has "
        "tags=%s, trainable=%s, and this one tags=%s, trainable=%s."
        % (base, entry.state.scope, sorted(entry.tags), entry.trainable,
           sorted(tags or ()), trainable))
  logging.info("Module '%s' shares the state of Module '%s' (replicated "
               "model).", base, entry.state.scope)
  return entry.state


def register(graph: tf.Graph, name: str, state: state_lib.ModuleState, tags,
             trainable: bool) -> None:
  """Records a newly made state for later towers (see `shared_state`)."""
  registry = _registry(graph)
  with _LOCK:
    registry.created[_base(name)].append(
        _Entry(state, frozenset(tags or ()), trainable))


def distributing(graph: tf.Graph) -> bool:
  """Whether a state made now gets its variables from a strategy."""
  return (tf.distribute.has_strategy() and not tf.executing_eagerly() and
          not graph.building_function)


def _replica_index() -> int:
  context = tf.distribute.get_replica_context()
  if context is None:  # Cross-replica context: the primary component.
    return 0
  index = tf.get_static_value(context.replica_id_in_sync_group)
  return int(index) if index is not None else 0


def replica_view(state: state_lib.ModuleState) -> state_lib.ModuleState:
  """`state` with its variables as the current replica's components.

  Args:
    state: a Module's state.

  Returns:
    `state` itself unless a strategy made its variables; else a copy whose
    state tensors are the handles (resource parts) or fresh reads (ref
    parts) of the current replica's components.
  """
  if not state.replica_components:
    return state
  index = _replica_index()
  tensors = dict(state.state_tensors)
  for key, (is_resource, components) in state.replica_components.items():
    component = components[min(index, len(components) - 1)]
    tensors[key] = component.handle if is_resource else component.value()
  return dataclasses.replace(state, state_tensors=tensors)


def _import(analysis, graph: tf.Graph, names: Set[str], scope: str,
            outside: Dict[str, object], left_out: Set[str]) -> None:
  """Imports `names` under `scope`; inputs from other nodes via `outside`.

  `outside` maps a node name not in `names` to a function of the output
  index (None for a control edge) returning a tensor (or, for a control
  edge, anything with `.op`).  Colocation with the nodes `left_out` (the
  variables, made by the strategy on its devices) is dropped.
  """
  if not names:
    return
  input_map = {}
  for name in names:
    for source in analysis.nodes[name].input:
      node = graph_analysis.node_of(source.lstrip("^"))
      if node in names:
        continue
      if source.startswith("^"):
        input_map[source] = outside[node](None).op
      else:
        index = int(source.split(":")[1]) if ":" in source else 0
        input_map["%s:%d" % (node, index)] = outside[node](index)
  graph_def = analysis.sub_graph_def(names)
  implicit = set(analysis.implicit_colocation(names))
  dropped = {_LOC + n.encode() for n in left_out}
  for node in graph_def.node:
    groups = node.attr["_class"].list.s
    if any(g in dropped for g in groups):
      kept = [g for g in groups if g not in dropped]
      del groups[:]
      groups.extend(kept or [_LOC + node.name.encode()])
      if not kept:
        implicit.add(node.name)
  state_lib.rewrite_shared_names(graph_def, scope)
  state_lib.import_sub_graph(graph_def, scope, input_map, sorted(implicit))
  for name in sorted(names):  # The importer renames clashing nodes.
    try:
      graph.get_operation_by_name("%s/%s" % (scope, name))
    except KeyError:
      raise RuntimeError(
          "Module node '%s' could not be imported as '%s/%s' next to the "
          "variables made by the distribution strategy (the name is taken)."
          % (name, scope, name)) from None


def _restore_tensors(scope: str, parts, checkpoint_path: str
                     ) -> List[tf.Tensor]:
  """One RestoreV2 reading `parts` from the module's checkpoint."""
  with tf.compat.v1.name_scope(scope + "/checkpoint_restore/"):
    tensors = tf.raw_ops.RestoreV2(
        prefix=tf.constant(checkpoint_path),
        tensor_names=tf.constant([key for key, _ in parts]),
        shape_and_slices=tf.constant([p.slice_spec() for _, p in parts]),
        dtypes=[tf.dtypes.as_dtype(p.dtype) for _, p in parts])
  for tensor, (_, part) in zip(tensors, parts):
    tensor.set_shape(part.shape)  # The variables get their static shapes.
  return list(tensors)


def _initial_values(analysis, graph: tf.Graph, scope: str, parts,
                    left_out: Set[str]) -> List[tf.Tensor]:
  """The variables' initial values, imported under a scope of their own.

  Raises:
    NotImplementedError: an initial value reads module state.
  """
  sources = []
  for key, part in parts:
    vdef = part.variable_def
    source = (vdef.initial_value_name or analysis.nodes[
        graph_analysis.node_of(vdef.initializer_name)].input[1])
    sources.append(source if ":" in source else source + ":0")
  # Data and control inputs only: their colocation with the variables is
  # dropped on import.
  names, todo = set(), [graph_analysis.node_of(t) for t in sources]
  while todo:
    name = todo.pop()
    if name not in names:
      names.add(name)
      todo.extend(graph_analysis.node_of(i.lstrip("^"))
                  for i in analysis.nodes[name].input)
  if names & left_out:
    raise NotImplementedError(
        "An initial value of a variable of Module '%s' reads module state "
        "(%s); such variables cannot be made through a distribution "
        "strategy." % (scope, sorted(names & left_out)))
  with graph.name_scope(None):
    sub_scope = graph.unique_name(scope + "/initial_values")
  _import(analysis, graph, names, sub_scope, {}, left_out)
  return [graph.get_tensor_by_name("%s/%s" % (sub_scope, t))
          for t in sources]


def create_distributed_state(spec, tags, scope: str,
                             trainable: bool) -> state_lib.ModuleState:
  """Like `state.create_state`, with variables made by the strategy.

  Args:
    spec: the ModuleSpec.
    tags: its graph variant.
    scope: absolute variable scope of the state, no trailing slash.
    trainable: as for `hub.Module`.

  Returns:
    The state; `replica_components` lists each variable's components.

  Raises:
    NotImplementedError: a variable's initial value reads another variable.
    RuntimeError: a variable name of the module is taken in the graph.
  """
  graph = tf.compat.v1.get_default_graph()
  analysis = graph_analysis.analysis_for(spec, tags)
  use_checkpoint = bool(spec.checkpoint_path and analysis.variable_parts)
  if use_checkpoint:
    checkpoint_check.check_variables(spec.checkpoint_path,
                                     analysis.variable_parts, scope)
  # The state without initializers and initial values (as with a
  # checkpoint): the strategy's variables take their place.
  names = state_lib._state_node_names(  # pylint: disable=protected-access
      analysis, True, trainable)
  parts = [(key, part) for key in sorted(analysis.variable_parts)
           for part in analysis.variable_parts[key]]
  variable_nodes = {p.node_name for _, p in parts}
  snapshots = {graph_analysis.node_of(p.variable_def.snapshot_name)
               for _, p in parts}
  initializers = {graph_analysis.node_of(p.variable_def.initializer_name)
                  for _, p in parts}
  left_out = variable_nodes | snapshots | initializers
  kept = set(names) - left_out

  def imported(name):
    return graph.as_graph_element("%s/%s" % (scope, name))

  if use_checkpoint:
    initial_values = _restore_tensors(scope, parts, spec.checkpoint_path)
  else:
    initial_values = _initial_values(analysis, graph, scope, parts, left_out)
  variable_map, variables, components = {}, [], {}
  by_node = {}
  with graph.name_scope(None):
    for (key, part), initial_value in zip(parts, initial_values):
      wanted = "%s/%s" % (scope, part.node_name)
      collections_ = [GraphKeys.GLOBAL_VARIABLES]
      if part.node_name in analysis.model_variables:
        collections_.append(GraphKeys.MODEL_VARIABLES)
      variable = tf.compat.v1.Variable(
          initial_value, trainable=bool(trainable and part.trainable),
          collections=collections_, name=wanted,
          dtype=tf.dtypes.as_dtype(part.dtype), use_resource=True,
          validate_shape=True)
      if variable.op.name != wanted:
        raise RuntimeError(
            "The name of module variable '%s' is already taken in the graph "
            "(the strategy made '%s'). Give the Module a unique name "
            "(name=...)." % (wanted, variable.op.name))
      local = list(tf.distribute.get_strategy().experimental_local_results(
          variable))
      if part.is_slice:
        for component in local:
          _tf_internal.set_save_slice_info(component, tf.Variable.SaveSliceInfo(key, list(part.full_shape),
                                        list(part.offset), list(part.shape)))
      components["%s:0" % part.node_name] = (part.is_resource, local)
      by_node[part.node_name] = (part, local[0])
      variables.append(variable)
      variable_map.setdefault(key, []).append(variable)
  for key in list(variable_map):
    created = variable_map[key]
    parts_of_key = analysis.variable_parts[key]
    if len(parts_of_key) == 1 and not parts_of_key[0].is_slice:
      variable_map[key] = created[0]

  with graph.name_scope(scope + "/replica_reads/"):
    primary_reads = {node: primary.value() for node, (_, primary)
                     in by_node.items()}
  outside = {}
  for node, (part, primary) in by_node.items():
    read = primary_reads[node]
    outside[node] = (lambda i, p=part, h=primary.handle, r=read:
                     h if (p.is_resource or i is None) else r)
  for _, part in parts:
    vdef = part.variable_def
    read = primary_reads[part.node_name]
    outside[graph_analysis.node_of(vdef.snapshot_name)] = (
        lambda i, r=read: r)
    initializer = by_node[part.node_name][1].initializer
    outside[graph_analysis.node_of(vdef.initializer_name)] = (
        lambda i, op=initializer: _OpAsTensor(op))
  _import(analysis, graph, kept, scope, outside, left_out)
  state_lib.restore_contexts(graph, analysis.contexts_within(kept), scope)

  state_lib.add_state_collections(graph, analysis, scope, kept, trainable)
  state_tensors = {}
  for node in analysis.state_nodes:
    key = "%s:0" % node
    if node in by_node:
      part, primary = by_node[node]
      state_tensors[key] = (primary.handle if part.is_resource
                            else primary_reads[node])
    else:
      state_tensors[key] = imported(key)
  return state_lib.ModuleState(scope=scope, state_tensors=state_tensors,
                               variable_map=variable_map, variables=variables,
                               replica_components=components)


class _OpAsTensor(object):
  """Wraps an op where `_import` expects a tensor for a control edge."""

  def __init__(self, op):
    self.op = op
