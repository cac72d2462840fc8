"""`hub_tf1.KerasLayer`: a TF1 Hub format module as a layer of `tf.keras`.

Rules of this file:
* The base class is whatever `tf.keras.layers.Layer` is when this file is
  first imported (on first use of `hub_tf1.KerasLayer`): Keras 3 on
  TensorFlow >= 2.16, tf_keras there when TF_USE_LEGACY_KERAS=1, Keras 2 on
  TensorFlow 2.15.  No other Keras is imported.
* The module's state is a `hub_tf1.tf2.loading.LoadedModule` whose variable
  parts are created by this layer's `add_weight`, so Keras owns them
  (`weights`, `trainable_weights`, `.keras` files, `model.export`) and the
  module's signature functions read exactly those variables.
* `trainable` follows tensorflow_hub's rule: the module's variables that it
  marks trainable are the layer's trainable weights only when the layer is
  trainable; then, and only then, a call with `training=True` runs the
  module's {"train"} variant (when it has one) with its update ops, and adds
  the module's regularization losses to `layer.losses`.
* A `.keras` file stores the handle and the options (`get_config`); loading
  it resolves the handle again and then sets the saved weights.
* Keras 3 gives a Sequential model without an `Input` the first layer's
  compute dtype as its input dtype, and for an `input_shape=` argument adds
  a float32 `Input`.  So under Keras 3 a layer whose signature takes one
  dense non-float input (strings, ids) gets that dtype as its dtype policy
  unless `dtype=` says otherwise, and with a non-float dtype its
  `input_shape` is not passed on (the model is built at its first call):
  tensorflow_hub's `KerasLayer(handle, input_shape=[], dtype=tf.string)` in
  a Sequential model works as it did under Keras 2.  Float inputs are left
  to Keras' dtype policy.
"""

from typing import Any, Dict, Optional

import tensorflow as tf

from hub_tf1 import resolving
from hub_tf1.spec import loading as spec_loading
from hub_tf1.tf2 import loading

_Layer = tf.keras.layers.Layer
# Keras 3 layers have `input_dtype`; tf_keras / Keras 2 layers do not.
_KERAS_3 = hasattr(_Layer, "input_dtype")


def _is_float(dtype) -> bool:
  return tf.as_dtype(dtype).is_floating


def _weight_name(name: str) -> str:
  # Keras 3 refuses "/" in weight names; `module_weights` of the layer maps
  # the module's own names (partitioned parts: "<key>/part_<offsets>").
  return name.replace("/", "__")


def _keras3_input_dtype(infos, arguments, kwargs) -> None:
  """Sets Keras 3 `kwargs` for a non-float input (see the file docstring)."""
  free = [info for key, info in infos.items() if key not in arguments]
  if kwargs.get("dtype") is None and len(free) == 1 and (
      not free[0].is_composite and free[0].dtype is not None and
      not _is_float(free[0].dtype)):
    kwargs["dtype"] = free[0].dtype.name
  if kwargs.get("dtype") is not None and not _is_float(kwargs["dtype"]):
    kwargs.pop("input_shape", None)


class KerasLayer(_Layer):
  """Wraps one signature of a TF1 Hub format module as a Keras layer.

  Usable in `Sequential` and functional models, `fit`, `.keras` saving.
  """

  def __init__(self,
               handle: str,
               trainable: bool = False,
               arguments: Optional[Dict[str, Any]] = None,
               _sentinel=None,  # pylint: disable=invalid-name
               tags=None,
               signature: Optional[str] = None,
               signature_outputs_as_dict: Optional[bool] = None,
               output_key: Optional[str] = None,
               output_shape=None,
               op_policy: Optional[str] = None,
               **kwargs):
    """Loads the module and creates its variables as the layer's weights.

    Args:
      handle: a path or URL of a TF1 Hub format module (resolved through
        hub_tf1's resolver and cache).
      trainable: whether the module's trainable variables are trained, and
        whether `training=True` selects its {"train"} variant.
      arguments: extra inputs of the signature, fixed at construction,
        merged with the call's inputs (a dict call input wins on no key: a
        clash is an error).
      _sentinel: keeps the options keyword-only, as in tensorflow_hub.
      tags: the graph variant for inference (default: no tags).
      signature: the signature to call (default: "default").
      signature_outputs_as_dict: return all outputs as a dict.
      output_key: return this output (default: "default").
      output_shape: accepted for compatibility; the module's own output
        shapes are used.
      op_policy: "strict" refuses a module with ops that touch files, the
        network or processes (see `hub_tf1.load`); None: $HUB_TF1_OP_POLICY.
      **kwargs: passed to the Keras `Layer` (name, dtype, ...).

    Raises:
      ValueError: both `signature_outputs_as_dict` and `output_key`, or
        positional options after `handle`.
      KeyError: the module has no graph with `tags`, or no such signature.
      UnsafeModuleError: strict op policy and flagged ops.
      hub_tf1 errors: the handle cannot be resolved or the module read.
    """
    if _sentinel is not None:
      raise ValueError("KerasLayer takes its options as keyword arguments "
                       "only (got a third positional argument for module "
                       "%s)." % handle)
    if signature_outputs_as_dict and output_key:
      raise ValueError("KerasLayer for module %s: pass at most one of "
                       "signature_outputs_as_dict and output_key." % handle)
    spec = spec_loading.load_module_spec(resolving.resolve(handle),
                                         op_policy=op_policy)
    signature = signature or "default"
    if signature not in spec.get_signature_names(tags):
      raise KeyError("Signature %r is missing from module %s (tags %s). "
                     "Signatures: %s" % (signature, handle,
                                         sorted(tags or ()),
                                         spec.get_signature_names(tags)))
    outputs = spec.get_output_info_dict(signature, tags)
    if not signature_outputs_as_dict and (output_key or "default") not in (
        outputs):
      raise KeyError("Signature %r of module %s has no output %r; outputs: "
                     "%s (use signature_outputs_as_dict=True or output_key)"
                     % (signature, handle, output_key or "default",
                        sorted(outputs)))
    if _KERAS_3:
      _keras3_input_dtype(spec.get_input_info_dict(signature, tags),
                          arguments or {}, kwargs)
    super().__init__(trainable=trainable, **kwargs)
    self._handle = handle
    self._tags = sorted(tags) if tags else None
    self._signature = signature
    self._as_dict = bool(signature_outputs_as_dict)
    self._output_key = output_key or "default"
    self._arguments = dict(arguments or {})
    self._output_shape = output_shape
    self._op_policy = op_policy
    self.module_weights: Dict[str, Any] = {}
    self._module = loading.LoadedModule(
        spec, handle, tags, variable_factory=self._add_module_weight)

  def _add_module_weight(self, name: str, value: tf.Tensor,
                         trainable: bool) -> tf.Variable:
    weight = self.add_weight(
        name=_weight_name(name), shape=value.shape, dtype=value.dtype,
        initializer=lambda shape, dtype=None, **_: value,
        trainable=trainable)
    self.module_weights[name] = weight
    # Keras 3 wraps a tf.Variable; the signature functions need the latter.
    return weight if isinstance(weight, tf.Variable) else weight.value

  def _inputs(self, inputs) -> Dict[str, Any]:
    infos = self._module.spec.get_input_info_dict(self._signature,
                                                  self._module_tags(False))
    if isinstance(inputs, dict):
      values = dict(inputs)
    elif len(infos) - len(self._arguments) == 1:
      (key,) = sorted(set(infos) - set(self._arguments))
      values = {key: inputs}
    else:
      raise TypeError(
          "Signature %r of module %s takes inputs %s; call the layer with a "
          "dict." % (self._signature, self._handle, sorted(infos)))
    clash = sorted(set(values) & set(self._arguments))
    if clash:
      raise TypeError("Inputs %s of signature %r of module %s are given both "
                      "in the call and in `arguments`." % (
                          clash, self._signature, self._handle))
    values.update(self._arguments)
    return values

  def _module_tags(self, training: bool) -> frozenset:
    tags = frozenset(self._tags or ())
    if training and self._module.spec.has_tags(tags | {"train"}):
      tags |= {"train"}
    return tags

  def call(self, inputs, training=None):
    """Applies the signature; see the class docstring for `training`.

    Args:
      inputs: a tensor (signatures with one input) or a dict of them;
        `tf.SparseTensor` and `tf.RaggedTensor` where the signature has them.
      training: Keras' training flag; effective only when the layer is
        trainable.

    Returns:
      The output tensor `output_key`, or the dict of all outputs.
    """
    training = bool(training) and self.trainable
    outputs = self._module.call_signature(
        self._inputs(inputs), self._signature, training=training,
        as_dict=True, tags=self._module_tags(training))
    if training:
      for loss in self._module.regularization_losses_for(
          self._module_tags(training)):
        self.add_loss(loss())
    if self._as_dict:
      return outputs
    return outputs[self._output_key]

  def get_config(self) -> Dict[str, Any]:
    """The handle and options; `from_config` loads the module again."""
    config = super().get_config()
    config.update({
        "handle": self._handle,
        "tags": self._tags,
        "signature": self._signature,
        "signature_outputs_as_dict": self._as_dict,
        "output_key": self._output_key,
        "arguments": self._arguments,
        "output_shape": self._output_shape,
        "op_policy": self._op_policy,
    })
    return config

  @property
  def resolved_object(self) -> loading.LoadedModule:
    """The module as `hub_tf1.load` gives it, on this layer's variables."""
    return self._module


# So that `.keras` files name the class "hub_tf1>KerasLayer" and load it.
tf.keras.utils.register_keras_serializable(package="hub_tf1")(KerasLayer)
