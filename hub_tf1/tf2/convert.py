"""`hub_tf1.convert`: a TF1 Hub format module written as a TF2 SavedModel.

Rules:
* What is saved is what `hub_tf1.load` builds (tf2/loading.LoadedModule):
  its variables, its tables (resources re-initialised from the copied asset
  files by `tf.saved_model.load`) and functions on the pruned sub-graphs of
  the signatures.  The result needs neither hub_tf1 nor the module's files:
  plain `tf.saved_model.load(export_dir)` restores it.
* The root object has the Reusable SavedModel interface:
  - `__call__(inputs, training=False)`: the "default" output of the
    "default" signature of graph variant `tags`; `training=True` runs the
    `tags | {"train"}` variant when the module has one (else `tags`), with
    its update ops, as `LoadedModule.__call__` does.  `inputs` is a tensor
    for a one-input signature, else a dict; SparseTensor and RaggedTensor
    inputs stay composite here.  Left out (logged) when the module has no
    "default" signature or it has no "default" output.
  - `variables`, `trainable_variables`: every variable part, in
    `LoadedModule.variables` order.
  - `regularization_losses`: zero-argument functions, the losses of the
    variant that `__call__(training=True)` runs.
* Serving signatures: one per signature of graph variant `tags`, named as
  in the module.  Signatures take and return dense tensors only, so each
  composite input or output `k` is flattened into named components:
  - SparseTensor `k`: `k_indices` (int64 [N, rank]), `k_values` ([N]) and
    `k_dense_shape` (int64 [rank]);
  - RaggedTensor `k` of ragged_rank R: `k_flat_values` and `k_row_splits_0`
    (outermost) ... `k_row_splits_<R-1>`;
  - a dense `k` keeps its name.
  Rebuild them with `tf.SparseTensor(indices, values, dense_shape)` and
  `tf.RaggedTensor.from_nested_row_splits(flat_values, [row_splits_0, ...])`.
  A flattened name equal to another key of the same signature is an error.
* TF1 while loops (Enter/Exit frames) are kept as they are: the functions
  run them (hub_tf1.load restores their control-flow contexts at import so
  that automatic control dependencies stay out of the loop frames).  Their
  gradients cannot be built in TF2 (TensorFlow fails when asked); `load`'s
  guard that turns this into UnsupportedGraphError is not saved.
* Written like every export of hub_tf1 (fileio.atomic_directory): into a
  temporary sibling renamed to `export_dir` when complete; `export_dir` must
  not exist (or be an empty directory); on any error nothing is left behind.
"""

from typing import Dict, List, Tuple

from absl import logging
import tensorflow as tf

from hub_tf1 import _tf_internal
from hub_tf1 import fileio
from hub_tf1 import resolving
from hub_tf1.spec import loading as spec_loading
from hub_tf1.tf2 import graph_rewrite
from hub_tf1.tf2 import loading

# A flat component: (serving name, TensorSpec).
_Flat = List[Tuple[str, tf.TensorSpec]]


def _component_suffixes(spec: tf.TypeSpec) -> List[str]:
  """Name suffixes of the components of a value of `spec`, flatten order."""
  if isinstance(spec, tf.SparseTensorSpec):
    return ["_indices", "_values", "_dense_shape"]
  if isinstance(spec, tf.RaggedTensorSpec):
    return ["_flat_values"] + ["_row_splits_%d" % i
                               for i in range(spec.ragged_rank)]
  if isinstance(spec, tf.TensorSpec):
    return [""]
  raise TypeError("%s cannot be flattened for a serving signature." % spec)


def flat_names(key: str, spec: tf.TypeSpec) -> List[str]:
  """The serving-signature names of entry `key` (see the file docstring).

  Args:
    key: an input or output key of a module signature.
    spec: its TypeSpec (TensorSpec, SparseTensorSpec or RaggedTensorSpec).

  Returns:
    One name per component, in `tf.nest.flatten(..., expand_composites=True)`
    order.

  Raises:
    TypeError: another kind of composite.
  """
  return [key + s for s in _component_suffixes(spec)]


def _flat_specs(key: str, spec: tf.TypeSpec) -> _Flat:
  if isinstance(spec, tf.TensorSpec):
    components = [spec]
  else:
    components = tf.nest.flatten(spec, expand_composites=True)
  names = flat_names(key, spec)
  if len(names) != len(components):
    raise TypeError("%s has %d components, expected %d." % (
        spec, len(components), len(names)))
  return [(n, tf.TensorSpec(c.shape, c.dtype, name=n))
          for n, c in zip(names, components)]


def _check_unique(flat: _Flat, what: str) -> None:
  seen = set()
  for name, _ in flat:
    if name in seen:
      raise ValueError("%s: the flattened name %r of a composite collides "
                       "with another entry." % (what, name))
    seen.add(name)


def _serving_function(module: loading.LoadedModule, signature: str,
                      tags: frozenset):
  """The concrete function of serving signature `signature`."""
  spec = module.spec
  where = "module %s, signature '%s'" % (module.handle, signature)
  input_infos = spec.get_input_info_dict(signature, tags)
  output_infos = spec.get_output_info_dict(signature, tags)
  inputs: Dict[str, _Flat] = {
      k: _flat_specs(k, input_infos[k].type_spec) for k in sorted(input_infos)}
  flat_inputs = [f for k in sorted(inputs) for f in inputs[k]]
  _check_unique(flat_inputs, where + ", inputs")
  outputs: Dict[str, List[str]] = {
      k: flat_names(k, output_infos[k].type_spec) for k in output_infos}
  _check_unique([(n, None) for k in sorted(outputs) for n in outputs[k]],
                where + ", outputs")
  call = module.signatures[signature]

  def serve(*args):
    values, i = {}, 0
    for key in sorted(inputs):
      count = len(inputs[key])
      components = list(args[i:i + count])
      i += count
      values[key] = (components[0] if count == 1 else tf.nest.pack_sequence_as(
          input_infos[key].type_spec, components, expand_composites=True))
    results = call(**values)
    flat = {}
    for key, names in outputs.items():
      components = tf.nest.flatten(results[key], expand_composites=True)
      flat.update(zip(names, components))
    return flat

  function = tf.function(serve, autograph=False,
                         input_signature=[s for _, s in flat_inputs])
  return function.get_concrete_function()


def _train_tags(module: loading.LoadedModule, tags: frozenset) -> frozenset:
  return tags | {"train"} if module.spec.has_tags(tags | {"train"}) else tags


def _call_function(module: loading.LoadedModule, tags: frozenset):
  """`__call__`, traced for both training values; None if not applicable."""
  spec = module.spec
  if "default" not in spec.get_signature_names(tags):
    logging.warning("Module %s has no 'default' signature: the SavedModel "
                    "gets no __call__.", module.handle)
    return None
  if "default" not in spec.get_output_info_dict("default", tags):
    logging.warning("Signature 'default' of module %s has no 'default' "
                    "output: the SavedModel gets no __call__.", module.handle)
    return None
  infos = spec.get_input_info_dict("default", tags)
  if not infos:
    input_spec = None
  elif len(infos) == 1:
    input_spec = next(iter(infos.values())).type_spec
  else:
    input_spec = {k: i.type_spec for k, i in infos.items()}

  def call(inputs, training=False):
    return module.call_signature(inputs, "default", training=bool(training))

  function = tf.function(call, autograph=False)
  for training in (False, True):
    function.get_concrete_function(input_spec, training=training)
  return function


def _loss_functions(module: loading.LoadedModule, tags: frozenset) -> list:
  functions = []
  for loss in module.regularization_losses_for(_train_tags(module, tags)):
    function = tf.function(loss, autograph=False, input_signature=[])
    function.get_concrete_function()
    functions.append(function)
  return functions


def _build_root(module: loading.LoadedModule, tags: frozenset):
  """The object to save and its serving signatures."""
  root = _tf_internal.auto_trackable()
  root.module = module
  root.variables = list(module.variables)
  root.trainable_variables = list(module.trainable_variables)
  root.regularization_losses = _loss_functions(module, tags)
  call = _call_function(module, tags)
  if call is not None:
    root.__call__ = call
  signatures = {name: _serving_function(module, name, tags)
                for name in sorted(module.spec.get_signature_names(tags))}
  return root, signatures


def convert(handle: str, export_dir: str, tags=None) -> str:
  """Writes TF1 Hub format module `handle` as a TF2 SavedModel.

  See the file docstring for what the SavedModel holds and how composite
  signature entries are flattened.

  Args:
    handle: a path or URL of a TF1 Hub format module (hub_tf1.resolving).
    export_dir: the directory to create; must not exist, or be empty.
    tags: the graph variant to convert (default: the one without tags).

  Returns:
    `export_dir`.

  Raises:
    tf.errors.AlreadyExistsError: `export_dir` exists and is not empty.
    ValueError: `handle` is not a TF1 Hub format module (e.g. a TF2
      SavedModel), or flattened signature names collide.
    KeyError: the module has no graph variant with `tags`.
    UnsupportedGraphError: the module uses what hub_tf1.load cannot express.
    Errors of reading the module (missing or corrupt files, unknown
    required features) as `hub_tf1.load_module_spec` raises them.
  """
  export_dir = export_dir.rstrip("/") or export_dir
  if tf.io.gfile.exists(export_dir) and (
      not tf.io.gfile.isdir(export_dir) or tf.io.gfile.listdir(export_dir)):
    raise tf.errors.AlreadyExistsError(
        None, None, "Cannot convert module %s to %s: it already exists."
        % (handle, export_dir))
  path = resolving.resolve(handle)
  if not tf.io.gfile.exists(tf.io.gfile.join(path, "tfhub_module.pb")):
    raise ValueError("Cannot convert %s: it is not a TF1 Hub format module "
                     "(no tfhub_module.pb in %s)." % (handle, path))
  spec = spec_loading.load_module_spec(path)
  tags = frozenset(tags or ())
  module = loading.LoadedModule(spec, handle, tags,
                                guard_loop_gradients=False)
  root, signatures = _build_root(module, tags)
  with fileio.atomic_directory(export_dir) as tmp:
    tf.saved_model.save(root, tmp, signatures=signatures)
  logging.info("Converted module %s (tags %s) to the SavedModel %s.", handle,
               sorted(tags), export_dir)
  return export_dir

