"""`hub_tf1.load`: a TF1 Hub format module as a TF2 object.

Rules: state is created once, eagerly: one `tf.Variable` (resource) per
variable part, initialised from the module's checkpoint, and one resource
per other state node (tables), initialised by running the module's table
initializers once.  Each signature is a `tf.function` that imports the
core's pruned sub-graph of that signature (hub_tf1.module.apply.build_plan)
with the state nodes mapped to the captured handles, so signatures cost
their own size and share the state.  Reference variables become resource
variables (graph_rewrite).  A directory without tfhub_module.pb is handed
to `tf.saved_model.load`.
"""

import itertools
import types
from typing import Callable, Dict, List, Optional

from absl import logging
import tensorflow as tf

from hub_tf1 import _tf_internal
from hub_tf1 import resolving
from hub_tf1.inspection import scan as scan_lib
from hub_tf1.module import apply as apply_lib
from hub_tf1.module import graph_analysis
from hub_tf1.module import state as state_lib
from hub_tf1.spec import loading as spec_loading
from hub_tf1.spec import tensor_info
from hub_tf1.tf2 import graph_rewrite

_uid = itertools.count()


def _attr_value(attr):
  which = attr.WhichOneof("value")
  if which == "type":
    return tf.dtypes.as_dtype(attr.type)
  if which == "shape":
    return tf.TensorShape(attr.shape)
  if which in ("s", "i", "f", "b"):
    return getattr(attr, which)
  raise graph_rewrite.UnsupportedGraphError(
      "attribute of kind %r is not supported for state ops" % which)


def _create_resource(node, unique: str) -> tf.Tensor:
  """Runs a state node's op eagerly; returns its resource handle."""
  attrs = {k: _attr_value(v) for k, v in node.attr.items()
           if not k.startswith("_")}
  if "shared_name" in attrs:
    attrs["shared_name"] = unique
  op = getattr(tf.raw_ops, node.op, None)
  if op is None:
    raise graph_rewrite.UnsupportedGraphError(
        "state op %r (%s) has no TF2 equivalent." % (node.name, node.op))
  return op(**attrs)


class _Variant(object):
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
    if not contexts:
      return tf.compat.v1.import_graph_def(
          graph_def, input_map=input_map, return_elements=fetches, name="")
    scope = graph.unique_name("hub_tf1_module", mark_as_used=False)
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
      ups = [u for u in plan.update_ops]
      results = self.run_graph(plan.graph_def,
                               {k: v for k, v in feeds.items()
                                if graph_analysis.node_of(k) in plan.imported},
                               imported + ups, signature,
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
    used = [v for n, v in sorted(self.node_variables.items())
            if n in {node.name for node in plan.graph_def.node}]
    guarded = loop_ops and self.loaded.guard_loop_gradients
    run = function if not guarded else _without_gradient(
        function, used, "%s: no gradients through TF1 while loops (ops %s) in TF2: "
        "TF2 functions build control flow v2 gradients only. Fine-tune this "
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


VariableFactory = Callable[[str, tf.Tensor, bool], tf.Variable]


def _default_variable(name: str, value: tf.Tensor,
                      trainable: bool) -> tf.Variable:
  return tf.Variable(value, trainable=trainable, name=name)


class _StateResource(tf.saved_model.experimental.TrackableResource):
  """A state node that is not a variable (a table), as a TF2 resource.

  Created and initialised (from the module's initializer ops, reading the
  module's asset files through tracked `tf.saved_model.Asset`s) when first
  used, and again by `tf.saved_model.load` of a model that captured it.
  """

  def __init__(self, variant: _Variant, name: str, assets: Dict):
    self._node = variant.analysis.nodes[name]
    self._name = name
    self._init = variant.initializer_graph(name)
    self._variant = variant
    self._assets = assets
    super().__init__()

  def _trackable_children(self, save_type="checkpoint", **kwargs):
    # The assets its initializer reads belong to it, so that a SavedModel
    # that tracks only the resource (Keras' model.export) copies the files.
    children = super()._trackable_children(save_type, **kwargs)
    if save_type == "savedmodel":
      children.update({"asset_%d" % i: asset for i, (_, asset) in
                       enumerate(sorted(self._assets.items()))})
    return children

  def _create_resource(self):
    return _create_resource(self._node, "hub_tf1_%d_%s" % (next(_uid),
                                                           self._name))

  def _initialize(self):
    if self._init is None:
      return tf.constant(0)
    graph_def, roots, asset_names = self._init
    feeds = {t: tf.identity(self._assets[t].asset_path) for t in asset_names}
    ops = self._variant.run_graph(
        graph_def, feeds, list(roots), "<initializer of %s>" % self._name,
        handles={self._name: self.resource_handle})
    with tf.control_dependencies(ops):
      return tf.constant(0)


class _Signatures(dict):
  """name -> callable(**inputs) -> dict of outputs."""

  def __missing__(self, name):
    raise KeyError("Signature %r is missing from the module. Signatures: %s"
                   % (name, sorted(self)))


class LoadedModule(tf.Module):
  """A TF1 Hub format module in TF2: signatures, __call__, variables."""

  def __init__(self, spec, handle: str, tags=None,
               variable_factory: Optional[VariableFactory] = None,
               guard_loop_gradients: bool = True):
    """Creates the module's state; see `load`.

    Args:
      spec: the module's ModuleSpec.
      handle: what the module was loaded from (for messages).
      tags: the graph variant for `signatures` and `__call__`.
      variable_factory: makes each variable part from (name, initial value,
        trainable); it must return a resource `tf.Variable` (KerasLayer uses
        it to create the parts as Keras weights).  Default: `tf.Variable`.
      guard_loop_gradients: signatures with TF1 while loops raise
        UnsupportedGraphError when differentiated (instead of failing inside
        TensorFlow); `convert` turns it off, since saving would trace the
        guard itself.
    """
    super().__init__(name="hub_tf1_module")
    self.guard_loop_gradients = guard_loop_gradients
    self.spec = spec
    self.handle = handle
    self._tags = frozenset(tags or ())
    spec.get_meta_graph(self._tags)  # Unknown tag set -> KeyError.
    self.variables_by_key: Dict[str, List[tf.Variable]] = {}
    self._resources: Dict[str, "_StateResource"] = {}
    self._assets: Dict[str, tf.saved_model.Asset] = {}
    self._create_variables(variable_factory or _default_variable)
    # Not a tf.Module attribute of its own: saving tracks the variables and
    # resources, not these Python-side caches.
    self._cache = types.SimpleNamespace(variants={})
    variant = self.variant(self._tags)
    self.signatures = _Signatures(
        (name, variant.signature_function(name, False))
        for name in spec.get_signature_names(self._tags))
    self._trainable_list = [
        v for vs in self.variables_by_key.values() for v in vs if v.trainable]

  def _create_variables(self, variable_factory: VariableFactory):
    analysis = graph_analysis.analysis_for(self.spec, self._tags)
    parts_all = [(k, p) for k, ps in sorted(analysis.variable_parts.items())
                 for p in ps]
    values = []
    if parts_all and self.spec.checkpoint_path:
      values = tf.raw_ops.RestoreV2(
          prefix=self.spec.checkpoint_path,
          tensor_names=[k for k, _ in parts_all],
          shape_and_slices=[p.slice_spec() for _, p in parts_all],
          dtypes=[tf.dtypes.as_dtype(p.dtype) for _, p in parts_all])
    elif parts_all:
      raise graph_rewrite.UnsupportedGraphError(
          "module %s has variables but no checkpoint; hub_tf1.load needs "
          "the exported variables." % self.handle)
    by_key: Dict[str, List[tf.Variable]] = {}
    for (key, part), value in zip(parts_all, values):
      name = key if not part.is_slice else "%s/part_%s" % (
          key, "_".join(str(o) for o in part.offset))
      by_key.setdefault(key, []).append(
          variable_factory(name, value, part.trainable))
    # Assigned once complete: tf.Module tracks it for saving as it is then.
    self.variables_by_key = by_key

  def resource(self, name: str, variant: "_Variant") -> "_StateResource":
    """The module's resource for state node `name`, made and initialised once.

    Args:
      name: a state node of `variant`'s graph that is not a variable.
      variant: the graph variant that first needs it (its initializers
        initialise it).

    Returns:
      The resource, shared by every variant.
    """
    if name not in self._resources:
      assets = {}
      for tensor_name in variant.analysis.asset_tensors:
        if tensor_name not in self._assets:
          path = tf.compat.as_str(tf.make_ndarray(variant.analysis.nodes[
              graph_analysis.node_of(tensor_name)].attr["value"].tensor).item())
          # Re-assigned, not mutated: tf.Module tracks what it sees then.
          self._assets = dict(self._assets,
                              **{tensor_name: tf.saved_model.Asset(path)})
        assets[tensor_name] = self._assets[tensor_name]
      resource = _StateResource(variant, name, assets)
      with tf.init_scope():
        unused_handle = resource.resource_handle  # Created eagerly, here.
      tf.function(resource._initialize, autograph=False)()  # pylint: disable=protected-access
      self._resources = dict(self._resources, **{name: resource})
    return self._resources[name]

  def variant(self, tags) -> _Variant:
    tags = frozenset(tags or ())
    if tags not in self._cache.variants:
      self.spec.get_meta_graph(tags)
      variant = _Variant(self, tags)
      self._cache.variants[tags] = variant
    return self._cache.variants[tags]

  @property
  def trainable_variables(self):
    return list(self._trainable_list)

  @property
  def variables(self):
    return [v for _, vs in sorted(self.variables_by_key.items()) for v in vs]

  @property
  def regularization_losses(self):
    return self.regularization_losses_for(self._tags)

  def regularization_losses_for(self, tags) -> list:
    """Zero-argument callables computing the losses of graph variant `tags`.

    Args:
      tags: the graph variant whose REGULARIZATION_LOSSES are computed.

    Returns:
      One callable per loss of the variant, each returning a scalar tensor
      from the current variable values.
    """
    variant = self.variant(tags)
    names = variant.analysis.regularization_losses
    if not names:
      return []
    losses = variant.losses_function()
    return [lambda i=i: losses()[i] for i in range(len(names))]

  def call_signature(self, inputs, signature="default", training=False,
                     as_dict=False, tags=None):
    """Applies `signature` of a graph variant to `inputs`.

    Args:
      inputs: a tensor (one-input signatures) or a dict of them.
      signature: the signature's name.
      training: import the signature with its update ops (and, unless `tags`
        is given, use the {"train"} variant when the module has one).
      as_dict: return every output as a dict, not the "default" one.
      tags: the graph variant (default: this object's, + "train" when
        training).

    Returns:
      The "default" output, or the dict of outputs.

    Raises:
      TypeError: inputs that do not fit the signature, or no "default"
        output without `as_dict`.
      KeyError: no such signature or tag set.
    """
    if tags is None:
      tags = self._tags
      if training and self.spec.has_tags(tags | {"train"}):
        tags = tags | {"train"}
    tags = frozenset(tags)
    variant = self.variant(tags)
    infos = self.spec.get_input_info_dict(signature, tags)
    if not isinstance(inputs, dict) and inputs is not None:
      if len(infos) != 1:
        raise TypeError("Signature expects multiple inputs. Use a dict. "
                        "(signature '%s' has inputs %s)"
                        % (signature, sorted(infos)))
      inputs = {next(iter(infos)): inputs}
    outputs = variant.signature_function(signature, bool(training))(
        **(inputs or {}))
    if as_dict:
      return outputs
    if "default" not in outputs:
      raise TypeError("There is no output named 'default'. (signature '%s' "
                      "has outputs %s)" % (signature, sorted(outputs)))
    return outputs["default"]

  def __call__(self, inputs=None, training=False):
    return self.call_signature(inputs, "default", training)


def load(handle: str, tags=None, op_policy: Optional[str] = None):
  """Loads a module for TF2: TF1 Hub format or TF2 SavedModel.

  Args:
    handle: a path or URL, resolved through hub_tf1.resolving.
    tags: the graph variant of a TF1 Hub format module (default: no tags),
      or the tags passed to `tf.saved_model.load` for a SavedModel.
    op_policy: "strict" refuses a TF1 Hub module whose graph has ops that
      touch files, the network or processes (hub_tf1.inspection.scan) before
      any of its ops runs; None: $HUB_TF1_OP_POLICY (unset: no check).

  Returns:
    A `LoadedModule` for a TF1 Hub format module, else what
    `tf.saved_model.load` returns.

  Raises:
    KeyError: the module has no graph with `tags`.
    UnsupportedGraphError: a construct TF2 cannot express.
    UnsafeModuleError: strict op policy and flagged ops.
    ValueError: strict op policy for a TF2 SavedModel, which scan does not
      read, or an unknown policy.
  """
  path = resolving.resolve(handle)
  if not tf.io.gfile.exists(tf.io.gfile.join(path, "tfhub_module.pb")):
    if scan_lib.is_strict(op_policy):
      raise ValueError(
          "%s is a TF2 SavedModel, not a TF1 Hub module; the strict op "
          "policy checks TF1 Hub modules only, so it refuses to load it." %
          handle)
    logging.info("%s is not a TF1 Hub module; using tf.saved_model.load.",
                 handle)
    return tf.saved_model.load(path, tags=tags)
  spec = spec_loading.load_module_spec(path, op_policy=op_policy)
  return LoadedModule(spec, handle, tags)
