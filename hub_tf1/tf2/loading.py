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
from typing import Dict, List

from absl import logging
import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.eager import tape as tape_lib

from hub_tf1 import resolving
from hub_tf1.module import apply as apply_lib
from hub_tf1.module import graph_analysis
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
    for name in sorted(self.analysis.state_nodes - set(self.handles)):
      self.handles[name] = loaded.resource(name, self.analysis.nodes[name])
    self._functions = {}

  def where(self, signature: str) -> str:
    return "module %s, signature '%s'" % (self.loaded.handle, signature)

  def run_graph(self, graph_def, feeds: Dict[str, tf.Tensor], fetches,
                signature: str):
    """Imports `graph_def` into the current (function) graph."""
    graph_def = graph_rewrite.to_tf2(graph_def, self.ref_nodes,
                                     self.ref_dtypes, self.where(signature))
    input_map = dict(feeds)
    graph = tf.compat.v1.get_default_graph()
    for node in graph_def.node:
      if node.name in self.handles and node.name + ":0" not in input_map:
        input_map[node.name + ":0"] = graph.capture(self.handles[node.name])
        if node.name in self.node_variables:
          # Reads bypass the Variable API; tell tapes they happen.
          tape_lib.variable_accessed(self.node_variables[node.name])
    for function_def in graph_def.library.function:
      context.context().add_function_def(function_def)
    return tf.compat.v1.import_graph_def(
        graph_def, input_map=input_map, return_elements=fetches, name="")

  def init_tables(self):
    roots = self.analysis.table_initializers
    if not roots:
      return
    names = self.analysis.closure(roots, self.analysis.state_nodes)
    graph_def = self.analysis.sub_graph_def(
        names, as_placeholders=frozenset(names & self.analysis.state_nodes))

    @tf.function(autograph=False)
    def initialize():
      ops = self.run_graph(graph_def, {}, list(roots), "<table init>")
      with tf.control_dependencies(ops):
        return tf.constant(0)
    initialize()

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
                               imported + ups, signature)
      tensors = dict(zip(imported, results[:len(imported)]))
      tensors.update(feeds)
      with tf.control_dependencies(results[len(imported):]):
        return {key: tf.nest.map_structure(
            tf.identity, tensor_info.pack_value(
                output_infos[key], [tensors[t] for t in comps]),
            expand_composites=True)
                for key, comps in plan.output_components.items()}

    function = tf.function(body, autograph=False)

    def call(*args, **kwargs):
      if args:
        raise TypeError("Signature '%s' takes keyword arguments only (%s)."
                        % (signature, sorted(input_infos)))
      values = apply_lib._normalize_inputs(  # pylint: disable=protected-access
          kwargs, input_infos, signature)
      converted = {k: tensor_info.convert_input(k, values[k], input_infos[k],
                                                signature)
                   for k in values}
      return function(**converted)
    call.function = function
    return call


class _Signatures(dict):
  """name -> callable(**inputs) -> dict of outputs."""

  def __missing__(self, name):
    raise KeyError("Signature %r is missing from the module. Signatures: %s"
                   % (name, sorted(self)))


class LoadedModule(tf.Module):
  """A TF1 Hub format module in TF2: signatures, __call__, variables."""

  def __init__(self, spec, handle: str, tags=None):
    super().__init__(name="hub_tf1_module")
    self.spec = spec
    self.handle = handle
    self._tags = frozenset(tags or ())
    spec.get_meta_graph(self._tags)  # Unknown tag set -> KeyError.
    self.variables_by_key: Dict[str, List[tf.Variable]] = {}
    self._resources: Dict[str, tf.Tensor] = {}
    self._create_variables()
    self._variants: Dict[frozenset, _Variant] = {}
    variant = self.variant(self._tags)
    self.signatures = _Signatures(
        (name, variant.signature_function(name, False))
        for name in spec.get_signature_names(self._tags))
    self._trainable_list = [
        v for vs in self.variables_by_key.values() for v in vs if v.trainable]

  def _create_variables(self):
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
    for (key, part), value in zip(parts_all, values):
      name = key if not part.is_slice else "%s/part_%s" % (
          key, "_".join(str(o) for o in part.offset))
      self.variables_by_key.setdefault(key, []).append(
          tf.Variable(value, trainable=part.trainable, name=name))

  def resource(self, name: str, node) -> tf.Tensor:
    if name not in self._resources:
      self._resources[name] = _create_resource(
          node, "hub_tf1_%d_%s" % (next(_uid), name))
    return self._resources[name]

  def variant(self, tags) -> _Variant:
    tags = frozenset(tags or ())
    if tags not in self._variants:
      self.spec.get_meta_graph(tags)
      variant = _Variant(self, tags)
      variant.init_tables()
      self._variants[tags] = variant
    return self._variants[tags]

  @property
  def trainable_variables(self):
    return list(self._trainable_list)

  @property
  def variables(self):
    return [v for _, vs in sorted(self.variables_by_key.items()) for v in vs]

  @property
  def regularization_losses(self):
    variant = self.variant(self._tags)
    names = variant.analysis.regularization_losses
    if not names:
      return []
    closure = variant.analysis.closure(
        [graph_analysis.node_of(n) for n in names], variant.analysis.state_nodes)
    graph_def = variant.analysis.sub_graph_def(
        closure,
        as_placeholders=frozenset(closure & variant.analysis.state_nodes))

    @tf.function(autograph=False)
    def losses():
      return variant.run_graph(graph_def, {}, list(names),
                               "<regularization losses>")
    return [lambda i=i: losses()[i] for i in range(len(names))]

  def call_signature(self, inputs, signature="default", training=False,
                     as_dict=False):
    """Applies `signature` (the {"train"} variant when training)."""
    tags = self._tags
    if training and self.spec.has_tags(tags | {"train"}):
      tags = tags | {"train"}
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


def load(handle: str, tags=None):
  """Loads a module for TF2: TF1 Hub format or TF2 SavedModel.

  Args:
    handle: a path or URL, resolved through hub_tf1.resolving.
    tags: the graph variant of a TF1 Hub format module (default: no tags),
      or the tags passed to `tf.saved_model.load` for a SavedModel.

  Returns:
    A `LoadedModule` for a TF1 Hub format module, else what
    `tf.saved_model.load` returns.

  Raises:
    KeyError: the module has no graph with `tags`.
    UnsupportedGraphError: a construct TF2 cannot express.
  """
  path = resolving.resolve(handle)
  if not tf.io.gfile.exists(tf.io.gfile.join(path, "tfhub_module.pb")):
    logging.info("%s is not a TF1 Hub module; using tf.saved_model.load.",
                 handle)
    return tf.saved_model.load(path, tags=tags)
  spec = spec_loading.load_module_spec(path)
  return LoadedModule(spec, handle, tags)
