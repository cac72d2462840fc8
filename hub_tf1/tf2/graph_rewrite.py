"""Rewrites of a module sub-graph so it runs inside a TF2 function.

Rules: every state node of the sub-graph is already an argument-less
DT_RESOURCE placeholder (see hub_tf1.module.graph_analysis.sub_graph_def).
For a reference variable that is not enough: its consumers expected a ref
tensor.  Value consumers get a ReadVariableOp of their own (keeping their
control inputs, so read order is kept); Assign/AssignAdd/AssignSub become
the resource ops plus a read under the old node name.  Any other consumer
of a reference variable cannot be expressed and raises, naming the op.
Devices and colocation groups are dropped: TF2 places function ops itself.
"""

from typing import Dict, Set

from tensorflow.core.framework import graph_pb2

from hub_tf1 import errors
from hub_tf1.module import graph_analysis

_RESOURCE_ASSIGN = {"Assign": "AssignVariableOp",
                    "AssignAdd": "AssignAddVariableOp",
                    "AssignSub": "AssignSubVariableOp"}
# Ops of TF1 while loops (control flow v1 frames).
V1_LOOP_OPS = frozenset(["Enter", "RefEnter", "Exit", "RefExit",
                         "NextIteration", "RefNextIteration", "LoopCond"])
# Ops that take a ref input but only read it.
_READERS = ("Identity", "Snapshot")


class UnsupportedGraphError(errors.Error, ValueError):
  """A TF1 construct of the module that TF2 functions cannot express."""


def _ref_input(name: str, ref_nodes: Set[str]) -> bool:
  return not name.startswith("^") and name.split(":")[0] in ref_nodes and (
      name.endswith(":0") or ":" not in name)


def to_tf2(graph_def: graph_pb2.GraphDef, ref_nodes: Set[str],
           dtypes, where: str) -> graph_pb2.GraphDef:
  """A copy of `graph_def` with reference variables used as resources.

  Args:
    graph_def: a sub-graph whose state nodes are resource placeholders.
    ref_nodes: names of the reference-variable nodes among them.
    dtypes: node name -> DataType enum of each reference variable's values.
    where: "module M, signature S", for error messages.

  Returns:
    The rewritten GraphDef.

  Raises:
    UnsupportedGraphError: an op other than a read or an assign uses a
      reference variable.
  """
  out = graph_pb2.GraphDef()
  out.versions.CopyFrom(graph_def.versions)
  out.library.CopyFrom(graph_def.library)
  for node in graph_def.node:
    new = out.node.add()
    new.CopyFrom(node)
    new.device = ""
    if "_class" in new.attr:
      del new.attr["_class"]
    refs = [i for i, name in enumerate(node.input)
            if _ref_input(name, ref_nodes)]
    if not refs:
      continue
    controls = [i for i in node.input if i.startswith("^")]
    if node.op in _RESOURCE_ASSIGN and refs == [0]:
      var = node.input[0].split(":")[0]
      assign = out.node.add(name=node.name + "/hub_tf1_resource_assign",
                            op=_RESOURCE_ASSIGN[node.op])
      assign.input.extend([var, node.input[1]] + controls)
      assign.attr["dtype"].type = dtypes[var]
      new.Clear()
      new.name, new.op = node.name, "ReadVariableOp"
      new.input.extend([var, "^" + assign.name])
      new.attr["dtype"].type = dtypes[var]
      continue
    if node.op.startswith(("Assign", "Scatter", "Apply", "Count")) or (
        node.op in ("IsVariableInitialized",)):
      raise UnsupportedGraphError(
          "%s: op %r (%s) uses reference variable %r in a way TF2 resource "
          "variables cannot express." % (where, node.name, node.op,
                                         node.input[refs[0]]))
    for i in refs:
      var = node.input[i].split(":")[0]
      if node.op in _READERS and len(refs) == 1:
        new.Clear()
        new.name, new.op = node.name, "ReadVariableOp"
        new.input.extend([var] + controls)
        new.attr["dtype"].type = dtypes[var]
        break
      read = out.node.add(name="%s/hub_tf1_read_%d" % (node.name, i),
                          op="ReadVariableOp")
      read.input.extend([var] + controls)
      read.attr["dtype"].type = dtypes[var]
      new.input[i] = read.name
  return out


def _rename_attr(value, names: Dict[str, str]) -> None:
  """Renames, in place, the library functions an AttrValue refers to."""
  funcs = ([value.func] if value.HasField("func") else []) + list(
      value.list.func)
  for func in funcs:
    func.name = names.get(func.name, func.name)
    for nested in func.attr.values():
      _rename_attr(nested, names)


def _rename_nodes(nodes, names: Dict[str, str]) -> None:
  for node in nodes:
    node.op = names.get(node.op, node.op)
    for value in node.attr.values():
      _rename_attr(value, names)


def rename_functions(graph_def: graph_pb2.GraphDef,
                     suffix: str) -> graph_pb2.GraphDef:
  """A copy of `graph_def` whose library functions carry `suffix`.

  The process-wide function registry of eager TF keeps one definition per
  name, and two modules may hold different functions under the same name
  (generated names like `__inference_body_12` repeat across modules).  Every
  reference is renamed with its function: calls by op type, `func` and
  `list(func)` attributes (also nested ones and inside function bodies) and
  the gradient table.

  Args:
    graph_def: a graph with a function library (maybe empty).
    suffix: appended to every function name; unique per loaded module.

  Returns:
    `graph_def` itself when it has no functions, else the renamed copy.
  """
  if not graph_def.library.function:
    return graph_def
  names = {f.signature.name: "%s_%s" % (f.signature.name, suffix)
           for f in graph_def.library.function}
  out = graph_pb2.GraphDef()
  out.CopyFrom(graph_def)
  _rename_nodes(out.node, names)
  for function in out.library.function:
    function.signature.name = names[function.signature.name]
    _rename_nodes(function.node_def, names)
  for gradient in out.library.gradient:
    gradient.function_name = names.get(gradient.function_name,
                                       gradient.function_name)
    gradient.gradient_func = names.get(gradient.gradient_func,
                                       gradient.gradient_func)
  return out


def state_nodes_used(graph_def: graph_pb2.GraphDef,
                     state_nodes) -> Set[str]:
  return {n.name for n in graph_def.node if n.name in state_nodes}


node_of = graph_analysis.node_of
