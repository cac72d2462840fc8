"""Finds flagged ops (op_policy.py) in every graph variant of a module.

Rules of this file:
* Pure proto walking: no TF session, no graph import, nothing runs.
* Looks at the top-level graph of every variant (TF1 while/cond contexts are
  plain nodes there) and at every function of the library, following calls
  (node op = function name, and any `func`/`list(func)` attr: If, While,
  PartitionedCall, tf.data map functions, ...) recursively with the chain.
* Allowed: table initializers fed by an asset tensor, and the SaverDef's
  save/restore ops.
* Cheap when clean (it runs before every strict `hub.Module`): one pass over
  the nodes finds candidates; node index, allow-lists and places are built
  only for a candidate, and the scan keeps no garbage-collected objects
  alive (see scan_meta_graph).
"""

import dataclasses
import os
from typing import Dict, Iterable, List, Optional, Set, Tuple

from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1 import errors
from hub_tf1 import spec_cache
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.inspection import op_policy


# The environment variable that sets the op policy when a caller gives none.
POLICY_ENV = "HUB_TF1_OP_POLICY"


class UnsafeModuleError(errors.Error, ValueError):
  """A module refused by the strict op policy; lists its findings."""

  def __init__(self, handle: str, findings: List["Finding"]):
    """Builds the message listing `findings`.

    Args:
      handle: the module refused, as the caller named it.
      findings: what the scan flagged (also kept as `self.findings`).
    """
    self.findings = list(findings)
    super().__init__(
        "Module %s holds %d op(s) that can touch files, network, processes or "
        "Python (refused by op policy 'strict'; nothing was run):\n%s" % (
            handle, len(findings),
            "\n".join("  " + f.describe() for f in findings)))


@dataclasses.dataclass(frozen=True)
class Finding:
  """One flagged op."""
  op: str
  node: str
  tags: Tuple[str, ...]
  where: Tuple[str, ...]  # e.g. "signature:default", "initializer".
  function: str  # "" in the top-level graph.
  call_chain: Tuple[str, ...]  # functions from the top-level node inward.
  reason: str

  def describe(self) -> str:
    text = "%s %r in graph %s" % (self.op, self.node, list(self.tags))
    if self.function:
      text += " in function %s (via %s)" % (self.function,
                                            " -> ".join(self.call_chain))
    return "%s, reached from %s: %s" % (
        text, ", ".join(self.where) or "nothing (unused)", self.reason)

  def as_json(self) -> dict:
    return dataclasses.asdict(self)


def _node_of(name: str) -> str:
  return name.lstrip("^").split(":")[0]


def _called_functions(node, library: Set[str]) -> List[str]:
  called = []
  if node.op in library:
    called.append(node.op)
  for value in node.attr.values():
    if value.HasField("func") and value.func.name in library:
      called.append(value.func.name)
    for func in value.list.func:
      if func.name in library:
        called.append(func.name)
  return called


def _roots(meta_graph) -> Dict[str, List[str]]:
  """Place label -> node names from which that place starts."""
  roots: Dict[str, List[str]] = {}
  for name, sig in meta_graph.signature_def.items():
    tensors = []
    for info in sig.outputs.values():
      enc = info.WhichOneof("encoding")
      if enc == "coo_sparse":
        coo = info.coo_sparse
        tensors += [coo.indices_tensor_name, coo.values_tensor_name,
                    coo.dense_shape_tensor_name]
      elif enc == "composite_tensor":
        tensors += [c.name for c in info.composite_tensor.components]
      else:
        tensors.append(info.name)
    roots["signature:" + name] = [_node_of(t) for t in tensors]
  from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top
  inits = []
  for serialized in meta_graph_lib.bytes_list(meta_graph, "variables"):
    vdef = variable_pb2.VariableDef.FromString(serialized)
    inits.append(_node_of(vdef.initializer_name))
  roots["variable initializer"] = inits
  roots["table initializer"] = [
      _node_of(n) for n in meta_graph_lib.node_list(meta_graph,
                                                    "table_initializer")]
  roots["update_ops"] = [_node_of(n) for n in meta_graph_lib.node_list(
      meta_graph, "update_ops")]
  return roots


class _NodeIndex:
  """Name -> NodeDef of a GraphDef, holding positions, not node objects.

  A dict of thousands of live NodeDef wrappers would be promoted through the
  garbage collector's generations; names and ints are not tracked by it.
  """

  def __init__(self, graph_def):
    self._node = graph_def.node
    self._position = {n.name: i for i, n in enumerate(graph_def.node)}

  def __contains__(self, name: str) -> bool:
    return name in self._position

  def __getitem__(self, name: str):
    return self._node[self._position[name]]


def _reach(nodes: _NodeIndex, roots: Iterable[str]) -> Set[str]:
  seen: Set[str] = set()
  todo = [r for r in roots if r in nodes]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    todo.extend(i for i in (_node_of(x) for x in nodes[name].input)
                if i in nodes)
  return seen


def _functions_with_flagged_ops(functions, library: Set[str]) -> Set[str]:
  """Functions of the library that hold a flagged op or call one that does."""
  direct = {name for name, f in functions.items()
            if any(n.op in op_policy.FLAGGED_OPS for n in f.node_def)}
  callers: Dict[str, Set[str]] = {}
  for name, f in functions.items():
    for fnode in f.node_def:
      for called in _called_functions(fnode, library):
        callers.setdefault(called, set()).add(name)
  result, todo = set(), list(direct)
  while todo:
    name = todo.pop()
    if name not in result:
      result.add(name)
      todo.extend(callers.get(name, ()))
  return result


def scan_meta_graph(meta_graph: meta_graph_pb2.MetaGraphDef) -> List[Finding]:
  """The findings of one graph variant, in graph order.

  A first pass only looks for candidates (flagged top-level nodes, calls of
  functions that reach a flagged op); the node index, allow-lists and
  places are built only when there is one.  Besides being fast, the pass
  leaves no objects behind: thousands of short-lived containers would
  survive the young garbage collections and bring on a full collection of
  the whole process (~0.07 s with TensorFlow loaded) in whatever runs next.

  Args:
    meta_graph: a MetaGraphDef as read from `saved_model.pb`.

  Returns:
    One Finding per flagged node (top level or inside a function).
  """
  graph_def = meta_graph.graph_def
  flagged_ops = op_policy.FLAGGED_OPS
  functions = {f.signature.name: f for f in graph_def.library.function}
  library = set(functions)
  # Only calls of these can lead to a finding.
  risky = _functions_with_flagged_ops(functions, library) if library else set()
  if risky:
    candidates = [n for n in graph_def.node
                  if n.op in flagged_ops or
                  any(c in risky for c in _called_functions(n, library))]
  else:
    candidates = [n for n in graph_def.node if n.op in flagged_ops]
  if not candidates:
    return []

  tags = tuple(sorted(meta_graph.meta_info_def.tags))
  nodes = _NodeIndex(graph_def)
  assets = {_node_of(t) for t in meta_graph_lib.node_list(
      meta_graph, meta_graph_lib.ASSET_FILEPATHS)}
  saver_allowed: Set[str] = set()
  saver = meta_graph.saver_def
  if saver.filename_tensor_name:
    saver_allowed = _reach(nodes, [_node_of(saver.save_tensor_name),
                                   _node_of(saver.restore_op_name)])

  def allowed(node) -> bool:
    if node.op in op_policy.ASSET_READERS and len(node.input) > 1:
      source = _node_of(node.input[1])
      while source in nodes and nodes[source].op == "Identity":
        source = _node_of(nodes[source].input[0])
      return source in assets
    return node.op in op_policy.SAVER_OPS and node.name in saver_allowed

  # (top-level node, Finding fields after `where`) in graph order.
  raw: List[Tuple[str, tuple]] = []

  def visit_function(top, fname, chain, done):
    if fname in done or fname not in risky:
      return
    done = done | {fname}
    for fnode in functions[fname].node_def:
      if fnode.op in flagged_ops:
        raw.append((top, (fnode.op, fnode.name, fname, chain + (fname,),
                          flagged_ops[fnode.op])))
      for called in _called_functions(fnode, library):
        visit_function(top, called, chain + (fname,), done)

  for node in candidates:
    if node.op in flagged_ops and not allowed(node):
      raw.append((node.name, (node.op, node.name, "", (),
                              flagged_ops[node.op])))
    for called in _called_functions(node, library):
      visit_function(node.name, called, (node.name,), frozenset())
  if not raw:
    return []

  places: Dict[str, List[str]] = {}
  for label, roots in _roots(meta_graph).items():
    for name in _reach(nodes, roots):
      places.setdefault(name, []).append(label)
  findings = []
  for top, (op, name, function, chain, reason) in raw:
    findings.append(Finding(op, name, tags, tuple(sorted(places.get(top, ()))),
                            function, chain, reason))
  return findings


def scan_meta_graphs(
    meta_graphs: Iterable[meta_graph_pb2.MetaGraphDef]) -> List[Finding]:
  """Findings of all graph variants, variant by variant."""
  result = []
  for meta_graph in meta_graphs:
    result.extend(scan_meta_graph(meta_graph))
  return result


def scan_spec(spec) -> List[Finding]:
  """Findings of a ModuleSpec (computed once per spec object)."""
  return spec_cache.get(spec, "op_scan",
                        lambda: scan_meta_graphs(spec.meta_graphs()))


def is_strict(policy: Optional[str]) -> bool:
  """Whether `policy` (None or "": $HUB_TF1_OP_POLICY) is "strict".

  Raises:
    ValueError: unknown policy.
  """
  policy = policy or os.environ.get(POLICY_ENV)
  if policy in (None, "", "default"):
    return False
  if policy != "strict":
    raise ValueError("Unknown op policy %r (expected 'default' or 'strict')."
                     % (policy,))
  return True


def check_policy(spec, handle: str, policy: Optional[str]) -> None:
  """Raises UnsafeModuleError when the op policy is "strict" and finds ops.

  Args:
    spec: the ModuleSpec to check.
    handle: what to name in the error.
    policy: "default" (no check) or "strict"; None or "": the value of
      $HUB_TF1_OP_POLICY, where unset means no check.

  Raises:
    ValueError: unknown policy.
    UnsafeModuleError: strict policy and findings.
  """
  if not is_strict(policy):
    return
  findings = scan_spec(spec)
  if findings:
    raise UnsafeModuleError(handle, findings)
