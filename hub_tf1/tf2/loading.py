"""`hub_tf1.load`: a TF1 Hub format module as a TF2 object.

Rules: state is created once, eagerly: one `tf.Variable` (resource) per
variable part, initialised from the module's checkpoint, and one resource
per other state node (tables, resources.py), initialised by running the
module's table initializers once.  Signatures are the functions of the
graph variant (variant.py), which share that state, so each signature costs
its own size.  Reference variables become resource variables
(graph_rewrite).  A directory without tfhub_module.pb is handed to
`tf.saved_model.load`.
"""

import types
from typing import Callable, Dict, List, Optional

from absl import logging
import tensorflow as tf

from hub_tf1 import resolving
from hub_tf1.inspection import scan as scan_lib
from hub_tf1.module import graph_analysis
from hub_tf1.spec import loading as spec_loading
from hub_tf1.tf2 import graph_rewrite
from hub_tf1.tf2 import resources
from hub_tf1.tf2 import variant as variant_lib


VariableFactory = Callable[[str, tf.Tensor, bool], tf.Variable]


def _default_variable(name: str, value: tf.Tensor,
                      trainable: bool) -> tf.Variable:
  return tf.Variable(value, trainable=trainable, name=name)


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
    self._resources: Dict[str, resources.StateResource] = {}
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

  def resource(self, name: str,
               variant: variant_lib.Variant) -> resources.StateResource:
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
      resource = resources.StateResource(variant, name, assets)
      with tf.init_scope():
        unused_handle = resource.resource_handle  # Created eagerly, here.
      tf.function(resource._initialize, autograph=False)()  # pylint: disable=protected-access
      self._resources = dict(self._resources, **{name: resource})
    return self._resources[name]

  def variant(self, tags) -> variant_lib.Variant:
    tags = frozenset(tags or ())
    if tags not in self._cache.variants:
      self.spec.get_meta_graph(tags)
      variant = variant_lib.Variant(self, tags)
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
