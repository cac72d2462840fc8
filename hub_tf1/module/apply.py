"""Applying a signature: importing its pruned sub-graph wired to the state.

For each (signature, trainable) the nodes the outputs depend on are computed
once, cut at the signature's inputs and at the state ops, which become
argument-less placeholders remapped on import to the caller's tensors and to
the instance's state.  Each call then imports only that sub-graph, so its
cost is the signature's size, not the module's.
"""

import dataclasses
from typing import Dict, List, Set, Tuple

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from hub_tf1.module import graph_analysis
from hub_tf1.module import state as state_lib
from hub_tf1.spec import tensor_info

GraphKeys = tf.compat.v1.GraphKeys
_PLACEHOLDER_OPS = ("Placeholder", "PlaceholderV2", "PlaceholderWithDefault")


@dataclasses.dataclass
class ApplyPlan:
  """The cached, call-independent part of applying one signature."""
  graph_def: object
  has_shared_names: bool
  input_components: Dict[str, List[str]]
  output_components: Dict[str, List[str]]
  state_inputs: List[str]  # "<node>:0" of state nodes the sub-graph uses.
  control_state: List[str]  # State nodes used as control inputs.
  colocated: List[Tuple[str, List[str]]]  # op -> targets incl. fed nodes.
  fed_nodes: Set[str]  # Nodes imported as placeholders.
  imported: Set[str]  # Every node of graph_def.
  contexts: list
  asset_tensors: List[str]
  update_ops: List[str]


def _placeholders_needed(analysis, names: Set[str], fed: Set[str]) -> Set[str]:
  return {n for n in names if n not in fed and
          analysis.nodes[n].op in _PLACEHOLDER_OPS}


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
  fed_nodes = (replace | analysis.state_nodes) & names
  graph_def = analysis.sub_graph_def(names, as_placeholders=frozenset(fed_nodes))
  control_state = sorted({
      graph_analysis.node_of(i) for node in graph_def.node for i in node.input
      if i.startswith("^") and graph_analysis.node_of(i) in analysis.state_nodes
      and graph_analysis.node_of(i) in names})
  colocated = [(n, targets) for n, targets in sorted(analysis.colocation.items())
               if n in names and n not in fed_nodes and
               any(t in fed_nodes for t in targets)]
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
                     if graph_analysis.node_of(t) in names],
      update_ops=update_ops)


def _normalize_inputs(inputs, expected: Dict, signature: str) -> Dict:
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


def _fix_colocation(graph: tf.Graph, plan: ApplyPlan, scope: str,
                    feed_map: Dict[str, tf.Tensor]) -> None:
  """Points colocation constraints on replaced nodes at their substitutes."""
  for name, targets in plan.colocated:
    op = graph.get_operation_by_name("%s/%s" % (scope, name))
    groups, devices = set(), []
    for target in targets:
      substitute = feed_map.get("%s:0" % target)
      if target in plan.fed_nodes and substitute is not None:
        groups.update(substitute.op.colocation_groups())
        devices.append(substitute.op.device)
      else:
        groups.add(tf.compat.as_bytes("loc:@%s/%s" % (scope, target)))
    op._set_attr("_class", attr_value_pb2.AttrValue(  # pylint: disable=protected-access
        list=attr_value_pb2.AttrValue.ListValue(s=sorted(groups))))
    op._set_device(next((d for d in devices if d), ""))  # pylint: disable=protected-access


def apply_signature(module_state, spec, tags, trainable: bool, name: str,
                    inputs, signature, as_dict):
  """Applies `signature` of the module to `inputs`; returns its outputs."""
  signature = signature or "default"
  signature_def = spec.get_signature_def(signature, tags)
  input_infos = spec.get_input_info_dict(signature, tags)
  output_infos = spec.get_output_info_dict(signature, tags)
  for key, info in list(input_infos.items()) + list(output_infos.items()):
    if not info.is_supported_type:
      raise ValueError("Signature '%s' has an entry '%s' of type %s that is "
                       "not supported." % (signature, key, info.type_spec))
  analysis = graph_analysis.analysis_for(spec, tags)
  plan = spec.memo(("apply_plan", frozenset(tags or ()), signature, trainable),
                   lambda: build_plan(analysis, signature_def, trainable))

  values = _normalize_inputs(inputs, input_infos, signature)
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
  context = graph._get_control_flow_context()  # pylint: disable=protected-access
  if context is not None:
    for key in sorted(feed_map):
      feed_map[key] = context.AddValue(feed_map[key])

  import_map = {k: v for k, v in feed_map.items()
                if graph_analysis.node_of(k) in plan.imported}
  for node in plan.control_state:
    import_map["^" + node] = module_state.state_tensors["%s:0" % node].op
  graph_def = plan.graph_def
  apply_name = "%s_apply_%s" % (name, signature.replace(":", "_"))
  with tf.compat.v1.name_scope(apply_name) as scope:
    scope = scope.rstrip("/")
    if plan.has_shared_names:
      graph_def = type(graph_def)()
      graph_def.CopyFrom(plan.graph_def)
      state_lib.rewrite_shared_names(graph_def, scope)
    state_lib.import_sub_graph(graph_def, scope, import_map)
  _fix_colocation(graph, plan, scope, feed_map)
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
