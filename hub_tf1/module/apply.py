"""Applying a signature: importing its pruned sub-graph wired to the state.

For each (signature, trainable) the nodes the outputs depend on are computed
once, cut at the signature's inputs and at the state ops, which become
argument-less placeholders remapped on import to the caller's tensors and to
the instance's state.  Each call then imports only that sub-graph, so its
cost is the signature's size, not the module's.  Exception: every call also
imports (and lists in ASSET_FILEPATHS) its own copy of each asset path, as
the original does, whether its ops read it or not.

Inside a function body (Defun, tf.function, wrap_function, Dataset.map)
the state usually lives in an enclosing graph (module.py lifts it there):
its tensors, and any other fed tensor of an enclosing graph, are captured
into the function, and control edges to state ops become control edges to
those captures.  Only the pruned sub-graph is imported, so a function
runtime that runs every stateful op runs only what the signature needs.
Under a TPU replicate context (recognised, as by the original, by the class
name of the control-flow context) a module with per-application
collections is refused, as the original does.
"""

import dataclasses
from typing import Dict, List, Set, Tuple

import tensorflow as tf

from hub_tf1 import _tf_internal
from hub_tf1 import spec_cache
from hub_tf1.module import graph_analysis
from hub_tf1.module import state as state_lib
from hub_tf1.spec import tensor_info

GraphKeys = tf.compat.v1.GraphKeys
# TPU training code builds its step function under a control-flow context of
# this class (tensorflow.python.tpu), which hub_tf1 must not import.
_TPU_CONTEXT_SUFFIX = "TPUReplicateContext"


def in_tpu_replicate_context(graph: tf.Graph) -> bool:
  """Whether `graph` is a function body under a TPU replicate context."""
  context = _tf_internal.control_flow_context(graph)
  return (graph.building_function and
          type(context).__name__.endswith(_TPU_CONTEXT_SUFFIX))


def function_body_kind(graph: tf.Graph) -> str:
  """Names the kind of function body `graph` is, for messages."""
  if in_tpu_replicate_context(graph):
    return "a function body under a TPU replicate context (%s)" % graph.name
  return "the function body %s (%s)" % (graph.name, type(graph).__name__)


def _check_tpu_collections(analysis, trainable: bool, scope: str,
                           signature: str) -> None:
  """Refuses per-application collections under a TPU replicate context.

  Raises:
    NotImplementedError: the module lists asset paths, TF1 control-flow
      contexts or (trainable) update ops, which would be collected inside
      the replicated function.
  """
  found = []
  if analysis.asset_tensors:
    found.append(GraphKeys.ASSET_FILEPATHS)
  kinds = sorted({c.kind for c in analysis.contexts})
  found.extend(kinds)
  if trainable and analysis.update_ops:
    found.append(GraphKeys.UPDATE_OPS)
  if found:
    raise NotImplementedError(
        "Applying modules with collections inside TPU functions is not "
        "supported. Collections found: %s (module scope '%s', signature "
        "'%s')." % (found, scope, signature))


def _capture_into_function(graph: tf.Graph, feed_map: Dict[str, tf.Tensor]
                          ) -> Set[str]:
  """Captures fed tensors of enclosing graphs into the function `graph`.

  Returns:
    The keys of `feed_map` whose tensors were replaced by captures.
  """
  captured = set()
  if not graph.building_function:
    return captured
  for key in sorted(feed_map):
    if feed_map[key].graph is not graph:
      feed_map[key] = graph.capture(feed_map[key])
      captured.add(key)
  return captured


@dataclasses.dataclass
class ApplyPlan:
  """The cached, call-independent part of applying one signature."""
  graph_def: object
  has_shared_names: bool
  input_components: Dict[str, List[str]]
  output_components: Dict[str, List[str]]
  state_inputs: List[str]  # "<node>:0" of state nodes the sub-graph uses.
  control_state: List[str]  # State nodes used as control inputs.
  # (node, its colocation targets) for every node of the module graph, in
  # graph order, colocated with a node some of whose outputs are fed (state
  # or signature inputs), whether imported or not (but not a node left out
  # that is colocated with state nodes only): see `_fix_colocation`.
  colocated: List[Tuple[str, List[str]]]
  fed_nodes: Set[str]  # Nodes imported as placeholders.
  imported: Set[str]  # Every node of graph_def.
  contexts: list
  asset_tensors: List[str]
  update_ops: List[str]


def _placeholders_needed(analysis, names: Set[str], fed: Set[str]) -> Set[str]:
  return {n for n in names if n not in fed and
          analysis.nodes[n].op in graph_analysis.PLACEHOLDER_OPS}


def build_plan(analysis, signature_def, trainable: bool) -> ApplyPlan:
  """Computes which nodes one application of `signature_def` imports."""
  inputs = analysis.signature_inputs(signature_def)
  outputs = analysis.signature_outputs(signature_def)
  input_tensors = {t for ts in inputs.values() for t in ts}
  replace, keep = graph_analysis.placeholder_candidates(analysis,
                                                        input_tensors)
  stop = frozenset(replace | analysis.state_nodes)
  roots = {graph_analysis.node_of(t) for ts in outputs.values() for t in ts
           if t not in input_tensors}
  roots |= keep
  names = analysis.closure(roots, stop)
  update_ops = []
  if trainable:
    for op_name in analysis.update_ops:
      needed = analysis.closure([op_name], stop)
      if not _placeholders_needed(analysis, needed, set(replace)):
        update_ops.append(op_name)
        names |= needed
  names |= {graph_analysis.node_of(t) for t in input_tensors}
  # Every application carries its own copy of each asset path, read or not,
  # so that a SavedModel exported from the caller's graph rewrites them all.
  names |= analysis.closure(
      [graph_analysis.node_of(t) for t in analysis.asset_tensors], stop)
  fed_nodes = (replace | analysis.state_nodes) & names
  # No self-colocation markers: imported ops keep the module's `_class`
  # attributes as they are, with nothing to clear after each import.
  graph_def = analysis.sub_graph_def(
      names, as_placeholders=frozenset(fed_nodes), self_colocation=False)
  control_sources = {graph_analysis.node_of(i) for node in graph_def.node
                     for i in node.input if i.startswith("^")}
  control_state = sorted(control_sources & analysis.state_nodes & names)
  fed_sources = ({graph_analysis.node_of(t) for t in input_tensors} |
                 analysis.state_nodes)
  # A node left out of the import matters only for the ambiguity check, which
  # a state node (one output, fed once) never fails: such nodes colocated
  # with state nodes alone (a module's variable initializers) are left out,
  # so each call looks at the fed tensors of the other targets only.
  colocated = sorted(
      ((n, targets) for n, targets in analysis.colocation.items()
       if n not in replace and n not in analysis.state_nodes and
       any(t in fed_sources for t in targets) and
       (n in names or any(t not in analysis.state_nodes for t in targets))),
      key=lambda item: analysis.position[item[0]])
  return ApplyPlan(
      graph_def=graph_def,
      has_shared_names=any(
          "shared_name" in n.attr and n.attr["shared_name"].s
          for n in graph_def.node),
      input_components=inputs,
      output_components=outputs,
      state_inputs=sorted("%s:0" % n for n in analysis.state_nodes & names),
      control_state=control_state,
      colocated=colocated,
      fed_nodes=fed_nodes,
      imported=names,
      contexts=analysis.contexts_within(names),
      asset_tensors=[t for t in analysis.asset_tensors
                     if graph_analysis.node_of(t) not in fed_nodes],
      update_ops=update_ops)


_LOC = b"loc:@"


def _colocation_rewrites(graph: tf.Graph, plan: ApplyPlan, scope: str,
                         feed_map: Dict[str, tf.Tensor], nodes: Set[str]
                        ) -> Dict[str, List[Tuple[List[bytes], str]]]:
  """How colocation with each of `nodes` follows the tensors fed for it.

  Returns:
    node -> [(colocation groups, why), ...], one entry per fed output of the
    node (in feed order), plus one for its outputs left unfed, if any, which
    keep the node's own group.  The rewrite is well defined if and only if
    all entries have the same groups.
  """
  entries = {}
  fed_outputs = {}
  for key, tensor in feed_map.items():
    node = graph_analysis.node_of(key)
    if node not in nodes:
      continue
    entries.setdefault(node, []).append((
        tensor.op.colocation_groups(),
        "input '%s/%s' is fed with '%s'" % (scope, key, tensor.name)))
    fed_outputs.setdefault(node, set()).add(int(key.split(":")[1]))
  for node in entries:
    if node in plan.fed_nodes or node not in plan.imported:
      continue  # A placeholder or state op: all (one) outputs fed.
    op = graph.get_operation_by_name("%s/%s" % (scope, node))
    unfed = sorted(set(range(len(op.outputs))) - fed_outputs[node])
    if unfed:
      entries[node].append((
          [_LOC + tf.compat.as_bytes(op.name)],
          "output(s) '%s:%s' are not signature inputs, so not fed" % (
              op.name, ",".join(str(i) for i in unfed))))
  return entries


def _fix_colocation(graph: tf.Graph, plan: ApplyPlan, scope: str,
                    signature: str, feed_map: Dict[str, tf.Tensor]) -> None:
  """Makes colocation with fed module nodes follow the tensors fed for them.

  As in the original, an op colocated with module node `y` (`loc:@y`) is
  colocated instead with the colocation groups of the tensors that replace
  `y`'s outputs, and placed on the device of the first of them that has one.
  That is ambiguous when `y`'s outputs are fed with tensors of different
  colocation groups, or only some of them are fed; then, as in the original,
  applying fails, also when the colocated op is not needed by the signature
  (the original imports the whole module graph).

  Raises:
    ValueError: an ambiguous rewrite, naming both candidate groups.
  """
  if not plan.colocated:
    return
  sources = {t for _, targets in plan.colocated for t in targets}
  rewrites = _colocation_rewrites(graph, plan, scope, feed_map, sources)
  prefix = tf.compat.as_bytes("%s/" % scope)
  for name, targets in plan.colocated:
    for target in targets:
      options = rewrites.get(target, ())
      conflict = next((o for o in options if o[0] != options[0][0]), None)
      if conflict is not None:
        raise ValueError(
            "Failed to rewrite colocation constraints while applying "
            "hub.Module (scope '%s', signature '%s'): module node '%s' is "
            "colocated with '%s', whose outputs are fed ambiguously: %s "
            "(colocation groups %s) but %s (colocation groups %s). Do not "
            "publish modules with signature inputs from several outputs of "
            "one op that other ops are colocated with (tf.colocate_with)."
            % (scope, signature, name, target, options[0][1],
               [tf.compat.as_str(g) for g in options[0][0]], conflict[1],
               [tf.compat.as_str(g) for g in conflict[0]]))
    if name not in plan.imported:
      continue
    op = graph.get_operation_by_name("%s/%s" % (scope, name))
    kept, groups = [], set()
    for value in op.get_attr("_class"):
      if not value.startswith(_LOC):
        kept.append(value)
        continue
      target = value[len(_LOC):]
      target = (tf.compat.as_str(target[len(prefix):])
                if target.startswith(prefix) else None)
      if target in rewrites:
        groups.update(rewrites[target][0][0])
      else:
        groups.add(value)
    groups = sorted(groups)
    _tf_internal.set_colocation_groups(op, kept + groups)
    devices = (graph.get_operation_by_name(
        tf.compat.as_str(g[len(_LOC):])).device for g in groups)
    _tf_internal.set_device(op, next((d for d in devices if d), ""))


def apply_signature(module_state, spec, tags, trainable: bool, name: str,
                    inputs, signature, as_dict):
  """Applies `signature` of the module to `inputs`; returns its outputs."""
  signature = signature or "default"
  signature_def = spec.get_signature_def(signature, tags)
  input_infos = spec.get_input_info_dict(signature, tags)
  output_infos = spec.get_output_info_dict(signature, tags)
  for role, infos in (("input", input_infos), ("output", output_infos)):
    for key, info in sorted(infos.items()):
      if not info.is_supported_type:
        raise ValueError(
            "Signature %r expects a %s for %s %r, which is not supported by "
            "this version of tensorflow_hub (type spec %s)." % (
                signature, info.type_spec.value_type.__name__, role, key,
                info.type_spec))
  analysis = graph_analysis.analysis_for(spec, tags)
  plan = spec_cache.get(
      spec, ("apply_plan", frozenset(tags or ()), signature, trainable),
      lambda: build_plan(analysis, signature_def, trainable))

  values = tensor_info.normalize_inputs(inputs, input_infos, signature)
  feed_map: Dict[str, tf.Tensor] = {}
  for name_in_state in plan.state_inputs:
    feed_map[name_in_state] = module_state.state_tensors[name_in_state]
  for key in sorted(values):
    tensor = tensor_info.convert_input(key, values[key], input_infos[key],
                                       signature)
    for component, value in zip(plan.input_components[key],
                                tensor_info.flatten_value(tensor)):
      feed_map[component] = value

  graph = tf.compat.v1.get_default_graph()
  if in_tpu_replicate_context(graph):
    _check_tpu_collections(analysis, trainable, module_state.scope,
                           signature)
  # State lifted out of a function body (see module.py) enters it as captured
  # inputs; so do caller tensors of enclosing graphs.
  captured = _capture_into_function(graph, feed_map)
  context = _tf_internal.control_flow_context(graph)
  if context is not None:
    for key in sorted(feed_map):
      feed_map[key] = context.AddValue(feed_map[key])

  import_map = {k: v for k, v in feed_map.items()
                if graph_analysis.node_of(k) in plan.imported}
  for node in plan.control_state:
    key = "%s:0" % node
    # A function body cannot hold a control edge to an op outside it; its
    # captured input of that op's output orders the same way.
    import_map["^" + node] = (feed_map[key] if key in captured
                              else module_state.state_tensors[key]).op
  graph_def = plan.graph_def
  apply_name = "%s_apply_%s" % (name, signature.replace(":", "_"))
  with tf.compat.v1.name_scope(apply_name) as scope:
    scope = scope.rstrip("/")
    if plan.has_shared_names:
      graph_def = type(graph_def)()
      graph_def.CopyFrom(plan.graph_def)
      state_lib.rewrite_shared_names(graph_def, scope)
    state_lib.import_sub_graph(graph_def, scope, import_map)
  _fix_colocation(graph, plan, scope, signature, feed_map)
  state_lib.restore_contexts(graph, plan.contexts, scope)
  for tensor_name in plan.asset_tensors:
    graph.add_to_collection(GraphKeys.ASSET_FILEPATHS,
                            graph.get_tensor_by_name("%s/%s" % (scope,
                                                                tensor_name)))
  for op_name in plan.update_ops:
    graph.add_to_collection(GraphKeys.UPDATE_OPS,
                            graph.get_operation_by_name("%s/%s" % (scope,
                                                                   op_name)))

  def lookup(tensor_name):
    if tensor_name in feed_map:
      return feed_map[tensor_name]
    return graph.get_tensor_by_name("%s/%s" % (scope, tensor_name))

  outputs = {key: tensor_info.pack_value(output_infos[key],
                                         [lookup(t) for t in components])
             for key, components in plan.output_components.items()}
  if as_dict:
    return outputs
  if "default" not in outputs:
    raise TypeError("There is no output named 'default'. Use as_dict=True. "
                    "(signature '%s' has outputs %s)"
                    % (signature, sorted(outputs)))
  return outputs["default"]
