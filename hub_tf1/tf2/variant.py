"""One graph variant (tag set) of a loaded module, as TF2 functions.

Rules of this file:
* A `Variant` holds no state of its own: the variables and resources are
  the LoadedModule's (shared by all its variants); the variant maps the
  state nodes of its graph to their handles.
* Each signature becomes one `tf.function` (made once per signature and
  training flag) that imports the core's pruned sub-graph of the signature
  (hub_tf1.module.apply.build_plan) into the function graph, reference
  variables rewritten as resources (graph_rewrite) and library functions
  renamed with a suffix of this variant (they are registered process-wide).
* TF1 while loops are imported with their control-flow contexts; their
  gradients cannot be built in TF2, so by default a custom gradient raises
  UnsupportedGraphError in their place (see `_without_gradient`).
"""

import itertools
from typing import Dict, Optional

import tensorflow as tf

from hub_tf1 import _tf_internal
from hub_tf1.module import apply as apply_lib
from hub_tf1.module import graph_analysis
from hub_tf1.module import state as state_lib
from hub_tf1.spec import tensor_info
from hub_tf1.tf2 import graph_rewrite

_uid = itertools.count()


class Variant(object):
  """One graph variant (tag set) of the module, bound to the shared state."""

  def __init__(self, loaded, tags):
    self.loaded = loaded
    self.tags = frozenset(tags or ())
    self.analysis = graph_analysis.analysis_for(loaded.spec, self.tags)
    self.ref_nodes = {p.node_name for parts in
                      self.analysis.variable_parts.values()
                      for p in parts if not p.is_resource}
    self.ref_dtypes = {p.node_name: p.dtype for parts in
                       self.analysis.variable_parts.values() for p in parts}
    self.handles: Dict[str, tf.Tensor] = {}
    self.node_variables: Dict[str, tf.Variable] = {}
    for key, parts in self.analysis.variable_parts.items():
      for part, variable in zip(parts, loaded.variables_by_key[key]):
        self.handles[part.node_name] = variable.handle
        self.node_variables[part.node_name] = variable
    self._functions = {}
    # Library functions are registered process-wide: unique names per variant.
    self.function_suffix = "hub_tf1_%d" % next(_uid)
    for name in sorted(self.analysis.state_nodes - set(self.handles)):
      self.handles[name] = loaded.resource(name, self).resource_handle

  def where(self, signature: str) -> str:
    return "module %s, signature '%s'" % (self.loaded.handle, signature)

  def run_graph(self, graph_def, feeds: Dict[str, tf.Tensor], fetches,
                signature: str, handles: Optional[Dict[str, tf.Tensor]] = None,
                contexts=()):
    """Imports `graph_def` into the current (function) graph.

    State nodes are mapped to this variant's handles (or to `handles`).
    `contexts` are the TF1 control-flow contexts of `graph_def`: restored on
    the imported ops, they keep the function's automatic control
    dependencies out of TF1 while-loop frames (which they would break with
    edges across frames).
    """
    graph_def = graph_rewrite.rename_functions(
        graph_rewrite.to_tf2(graph_def, self.ref_nodes, self.ref_dtypes,
                             self.where(signature)),
        self.function_suffix)
    input_map = dict(feeds)
    graph = tf.compat.v1.get_default_graph()
    for node in graph_def.node:
      if handles and node.name in handles:
        input_map[node.name + ":0"] = graph.capture(handles[node.name])
      elif node.name in self.handles and node.name + ":0" not in input_map:
        input_map[node.name + ":0"] = graph.capture(self.handles[node.name])
        if node.name in self.node_variables:
          # Reads bypass the Variable API: record them for tapes and for
          # the function graph, whose calls then report them to tapes too.
          _tf_internal.variable_accessed(self.node_variables[node.name])
    for function_def in graph_def.library.function:
      _tf_internal.add_function_def(function_def)
    # Contexts are restored by name: give their ops a scope of their own.
    scope = graph.unique_name("hub_tf1_module",
                              mark_as_used=False) if contexts else ""
    results = tf.compat.v1.import_graph_def(
        graph_def, input_map=input_map, return_elements=fetches, name=scope)
    state_lib.restore_contexts(graph, contexts, scope)
    return results

  def initializer_graph(self, name: str):
    """The table-initializer sub-graph of state node `name`, or None.

    Returns:
      (graph_def, root op names, asset tensor names it reads), or None when
      no initializer of this variant takes the node as its input.
    """
    roots = [r for r in self.analysis.table_initializers
             if name in {graph_analysis.node_of(i)
                         for i in self.analysis.nodes[r].input}]
    if not roots:
      return None
    names = self.analysis.closure(roots, self.analysis.state_nodes)
    graph_def = self.analysis.sub_graph_def(
        names, as_placeholders=frozenset(names & self.analysis.state_nodes))
    assets = [t for t in self.analysis.asset_tensors
              if graph_analysis.node_of(t) in names]
    return graph_def, roots, assets

  def losses_function(self):
    """A tf.function computing this variant's regularization losses (made once).

    KerasLayer asks for it on every training call; one function keeps one
    trace instead of importing the loss graph again each time.
    """
    if "<losses>" not in self._functions:
      names = list(self.analysis.regularization_losses)
      closure = self.analysis.closure(
          [graph_analysis.node_of(n) for n in names], self.analysis.state_nodes)
      graph_def = self.analysis.sub_graph_def(
          closure,
          as_placeholders=frozenset(closure & self.analysis.state_nodes))

      @tf.function(autograph=False)
      def losses():
        return self.run_graph(graph_def, {}, names, "<regularization losses>")
      self._functions["<losses>"] = losses
    return self._functions["<losses>"]

  def signature_function(self, signature: str, trainable: bool):
    key = (signature, trainable)
    if key not in self._functions:
      self._functions[key] = self._make_function(signature, trainable)
    return self._functions[key]

  def _make_function(self, signature: str, trainable: bool):
    spec = self.loaded.spec
    signature_def = spec.get_signature_def(signature, self.tags)
    input_infos = spec.get_input_info_dict(signature, self.tags)
    output_infos = spec.get_output_info_dict(signature, self.tags)
    plan = apply_lib.build_plan(self.analysis, signature_def, trainable)
    fetch_names = sorted({t for ts in plan.output_components.values()
                          for t in ts})

    def body(**inputs):
      feeds = {}
      for k in sorted(inputs):
        for name, value in zip(plan.input_components[k],
                               tensor_info.flatten_value(inputs[k])):
          feeds[name] = value
      imported = [n for n in fetch_names if n not in feeds]
      results = self.run_graph(plan.graph_def,
                               {k: v for k, v in feeds.items()
                                if graph_analysis.node_of(k) in plan.imported},
                               imported + list(plan.update_ops), signature,
                               contexts=plan.contexts)
      tensors = dict(zip(imported, results[:len(imported)]))
      tensors.update(feeds)
      with tf.control_dependencies(results[len(imported):]):
        return {key: tf.nest.map_structure(
            tf.identity, tensor_info.pack_value(
                output_infos[key], [tensors[t] for t in comps]),
            expand_composites=True)
                for key, comps in plan.output_components.items()}

    function = tf.function(body, autograph=False)
    loop_ops = sorted({n.op for n in plan.graph_def.node}
                      & graph_rewrite.V1_LOOP_OPS)
    run = function
    if loop_ops and self.loaded.guard_loop_gradients:
      in_graph = {node.name for node in plan.graph_def.node}
      run = _without_gradient(
          function,
          [v for n, v in sorted(self.node_variables.items()) if n in in_graph],
          "%s: no gradients through TF1 while loops (ops %s) in TF2: TF2 "
          "functions build control flow v2 gradients only. Fine-tune this "
          "module with hub_tf1.Module in tf.compat.v1 graph mode, or use it "
          "frozen (trainable=False, inputs not differentiated)."
          % (self.where(signature), ", ".join(loop_ops)))

    def call(*args, **kwargs):
      if args:
        raise TypeError("Signature '%s' takes keyword arguments only (%s)."
                        % (signature, sorted(input_infos)))
      values = tensor_info.normalize_inputs(kwargs, input_infos, signature)
      converted = {k: tensor_info.convert_input(k, values[k], input_infos[k],
                                                signature)
                   for k in values}
      return run(**converted)
    call.function = function
    return call


def _without_gradient(function, variables, message: str):
  """`function` (keyword tensors -> outputs) whose gradient raises.

  The forward pass runs with the caller's tapes paused (a tape would make
  TF build the function's gradient at the call, which fails for TF1 while
  loops); a custom gradient stands in for it and raises
  UnsupportedGraphError(`message`) when a gradient is asked for, also one
  with respect to `variables` (those `function` reads, reported to the
  tapes here since the paused call does not).
  """

  def call(**kwargs):
    keys = sorted(kwargs)

    @tf.custom_gradient
    def forward(*values):
      for variable in variables:
        _tf_internal.variable_accessed(variable)
      with _tf_internal.stop_recording():
        outputs = function(**dict(zip(keys, values)))

      def gradient(*unused_output_gradients, variables=None):
        del unused_output_gradients, variables
        raise graph_rewrite.UnsupportedGraphError(message)
      return outputs, gradient
    return forward(*[kwargs[k] for k in keys])
  return call
