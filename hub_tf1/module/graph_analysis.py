"""Static analysis of one module graph variant, done once per spec and tags.

Everything `Module` needs to import only what it must: the state nodes, the
dependencies of the state initializers, and for each signature the nodes its
outputs depend on (cut at its inputs and at the state), closed over
colocation constraints and TF1 control-flow contexts.
"""

import collections
from typing import Dict, FrozenSet, Iterable, List, Set, Tuple

from tensorflow.core.framework import graph_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import control_flow_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1 import _tf_internal
from hub_tf1 import spec_cache
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.format import variables as variables_lib
from hub_tf1.spec import create
from hub_tf1.spec import tensor_info

# Op types of graph inputs (what a signature's inputs are fed into).
PLACEHOLDER_OPS = ("Placeholder", "PlaceholderV2", "PlaceholderWithDefault")

_COLOCATION_PREFIX = b"loc:@"


def node_of(tensor_name: str) -> str:
  name = tensor_name[1:] if tensor_name.startswith("^") else tensor_name
  return name.split(":")[0]


def _ensure_ops_registered(meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
  missing = sorted({node.op for node in meta_graph.graph_def.node
                    if _tf_internal.op_def(node.op) is None} -
                   {f.signature.name
                    for f in meta_graph.graph_def.library.function})
  if missing:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    raise tf.errors.NotFoundError(
        None, None,
        "Graph ops missing from the python registry (%s) are also absent "
        "from the c++ registry. %s The module uses ops that this TensorFlow "
        "does not have: import the library that defines them (e.g. "
        "tensorflow_text) before loading the module." % (
            set(missing), " ".join("Op type not registered %r." % op
                                   for op in missing)))


class _Context(object):
  """A TF1 control-flow context stored in the module graph."""

  def __init__(self, kind: str, proto):
    self.kind = kind  # "cond_context" or "while_context".
    self.proto = proto
    self.members: Set[str] = set()
    self._collect(proto)

  def _collect(self, proto):
    values_def = proto.values_def
    external = set(values_def.external_values)
    self.members.update(node_of(v) for v in values_def.values
                        if v not in external)
    self.members.update(node_of(v) for v in values_def.external_values.values())
    for nested in getattr(proto, "nested_contexts", []):
      which = nested.WhichOneof("ctxt")
      if which:
        self._collect(getattr(nested, which))


class GraphAnalysis(object):
  """Indexes of one MetaGraphDef used to cut sub-graphs out of it."""

  def __init__(self, meta_graph: meta_graph_pb2.MetaGraphDef):
    _ensure_ops_registered(meta_graph)
    self.meta_graph = meta_graph
    graph_def = meta_graph.graph_def
    self.nodes = {node.name: node for node in graph_def.node}
    self.position = {node.name: i for i, node in enumerate(graph_def.node)}
    self.state_nodes: FrozenSet[str] = frozenset(
        node.name for node in graph_def.node
        if create.is_state_op_type(node.op))
    for name in sorted(self.state_nodes):
      op_def = _tf_internal.op_def(self.nodes[name].op)
      n_out = len(op_def.output_arg)
      if n_out != 1 or op_def.output_arg[0].number_attr or (
          op_def.output_arg[0].type_list_attr):
        raise ValueError("Stateful op %s has %d outputs, expected 1 (node %s)."
                         % (self.nodes[name].op, n_out, name))
    self.colocation: Dict[str, List[str]] = {}
    for node in graph_def.node:
      if "_class" in node.attr:
        targets = [v[len(_COLOCATION_PREFIX):].decode()
                   for v in node.attr["_class"].list.s
                   if v.startswith(_COLOCATION_PREFIX)]
        targets = [t for t in targets if t != node.name]
        if targets:
          self.colocation[node.name] = targets
    self.contexts: List[_Context] = []
    self.context_of: Dict[str, List[int]] = collections.defaultdict(list)
    for kind, proto_type in (("cond_context", control_flow_pb2.CondContextDef),
                             ("while_context",
                              control_flow_pb2.WhileContextDef)):
      for serialized in meta_graph_lib.bytes_list(meta_graph, kind):
        context = _Context(kind, proto_type.FromString(serialized))
        for member in context.members:
          self.context_of[member].append(len(self.contexts))
        self.contexts.append(context)
    self.variable_parts = variables_lib.variable_parts(meta_graph)
    self.table_initializers = [
        node_of(n) for n in meta_graph_lib.node_list(meta_graph,
                                                     "table_initializer")]
    self.asset_tensors = meta_graph_lib.node_list(
        meta_graph, meta_graph_lib.ASSET_FILEPATHS)
    self.update_ops = [node_of(n) for n in
                       meta_graph_lib.node_list(meta_graph, "update_ops")]
    self.regularization_losses = meta_graph_lib.node_list(
        meta_graph, "regularization_losses")
    self.model_variables = frozenset(
        variables_lib.variable_names(meta_graph, "model_variables"))

  # -- closures --------------------------------------------------------------

  def closure(self, roots: Iterable[str], stop: FrozenSet[str] = frozenset()
             ) -> Set[str]:
    """Nodes `roots` need, not looking behind the nodes in `stop`.

    Follows data and control inputs, colocation targets, and whole TF1
    control-flow contexts (their ops are restored together).
    """
    # Runs on the first application of each signature (apply.build_plan):
    # inputs are pushed only when not yet seen.
    nodes, colocation, context_of = self.nodes, self.colocation, self.context_of
    seen: Set[str] = set()
    contexts_done: Set[int] = set()
    todo = list(roots)
    while todo:
      name = todo.pop()
      if name in seen:
        continue
      node = nodes.get(name)
      if node is None:
        raise ValueError("Module graph has no node %r." % name)
      seen.add(name)
      if name in stop:
        continue
      todo.extend(source for source in map(node_of, node.input)
                  if source not in seen)
      todo.extend(colocation.get(name, ()))
      for index in context_of.get(name, ()):
        if index not in contexts_done:
          contexts_done.add(index)
          todo.extend(self.contexts[index].members)
    return seen

  def contexts_within(self, names: Set[str]) -> List[_Context]:
    return [c for c in self.contexts if c.members and c.members <= names]

  def sub_graph_def(self, names: Set[str],
                    as_placeholders: FrozenSet[str] = frozenset(),
                    with_library: bool = True,
                    self_colocation: bool = True) -> graph_pb2.GraphDef:
    """A GraphDef of `names`; nodes in `as_placeholders` become inputs.

    Those nodes are replaced by argument-less Placeholders: their outputs are
    remapped to the caller's tensors on import, so only the names remain.

    Args:
      names: the nodes to copy.
      as_placeholders: nodes of `names` to replace by Placeholders.
      with_library: copy the module graph's function library.
      self_colocation: give every node without a `_class` attribute a
        self-colocation marker (see below); the importer must then clear it
        again from the nodes `implicit_colocation` lists.

    Returns:
      The GraphDef, nodes in module graph order.
    """
    graph_def = graph_pb2.GraphDef()
    graph_def.versions.CopyFrom(self.meta_graph.graph_def.versions)
    if with_library:
      graph_def.library.CopyFrom(self.meta_graph.graph_def.library)
    for name in sorted(names, key=self.position.__getitem__):
      node = self.nodes[name]
      if name in as_placeholders:
        new_node = graph_def.node.add(name=name, op="Placeholder",
                                      device=node.device)
        dtype = node.attr["dtype"].type if node.op in PLACEHOLDER_OPS else (
            types_pb2.DT_RESOURCE)
        new_node.attr["dtype"].type = dtype
      else:
        new_node = graph_def.node.add()
        new_node.CopyFrom(node)
      if self_colocation and "_class" not in new_node.attr:
        # Every op is colocated with itself anyway.  Saying so explicitly
        # spares TensorFlow's importer a failing attribute lookup (and the
        # exception it builds) per imported op.  The marker is an import-time
        # device only: `state.import_sub_graph` clears it again from the
        # nodes that `implicit_colocation` lists, so the caller's graph holds
        # no `_class` the module graph does not (as with the original).
        # That pays off for a one-time import only: clearing costs about
        # what the marker saves, and the cleared ops make every later import
        # into the graph slower (TF 2.15, BERT: the 13th to 16th m(x) spend
        # ~40% more in TF_GraphImportGraphDefWithResults), so repeated
        # imports (apply.py) pass self_colocation=False.  Clearing also drops
        # the groups a caller's `tf.compat.v1.colocate_with` gave those ops.
        new_node.attr["_class"].list.s.append(_COLOCATION_PREFIX +
                                              name.encode())
    return graph_def

  def implicit_colocation(self, names: Iterable[str],
                          as_placeholders: FrozenSet[str] = frozenset()
                         ) -> List[str]:
    """The nodes of `names` that `sub_graph_def` gives a self-colocation marker.

    Args:
      names: nodes passed to `sub_graph_def`.
      as_placeholders: the same argument as there.

    Returns:
      Sorted node names: those without a `_class` attribute in the module
      graph, and the placeholders (which never keep the node's attributes).
    """
    return sorted(n for n in names
                  if n in as_placeholders or "_class" not in self.nodes[n].attr)

  # -- signatures ------------------------------------------------------------

  def signature_inputs(self, signature) -> Dict[str, List[str]]:
    return {key: tensor_info.component_names(info)
            for key, info in signature.inputs.items()}

  def signature_outputs(self, signature) -> Dict[str, List[str]]:
    return {key: tensor_info.component_names(info)
            for key, info in signature.outputs.items()}


def analysis_for(spec, tags) -> GraphAnalysis:
  """The (cached) analysis of the variant of `spec` with `tags`."""
  key = ("graph_analysis", frozenset(tags or ()))
  return spec_cache.get(spec, key,
                        lambda: GraphAnalysis(spec.get_meta_graph(tags)))


def placeholder_candidates(analysis: GraphAnalysis,
                           fed_tensors: Iterable[str]) -> Tuple[Set[str], Set[str]]:
  """Splits fed tensors' nodes into (replaceable nodes, kept nodes).

  A node can be replaced by a Placeholder when it has a single output and
  that output is fed; otherwise it is kept (and its inputs imported).
  """
  replace, keep = set(), set()
  for tensor_name in fed_tensors:
    node = node_of(tensor_name)
    op = analysis.nodes[node].op
    if tensor_name.endswith(":0") and op in PLACEHOLDER_OPS:
      replace.add(node)
    elif node in analysis.state_nodes:
      replace.add(node)
    else:
      keep.add(node)
  return replace, keep
