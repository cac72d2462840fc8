"""`load_module_spec`: handle -> local directory -> ModuleSpec."""

from hub_tf1 import resolving
from hub_tf1.format import module_files
from hub_tf1.spec import module_spec as module_spec_lib


def load_module_spec(handle: str) -> module_spec_lib.ModuleSpec:
  """Resolves `handle` (path or URL) and reads the module found there.

  Raises:
    tf.errors.NotFoundError: no `tfhub_module.pb` (not a TF1 Hub module).
    ValueError: unsupported format version or required features.
    IOError: unreadable `saved_model.pb`.
  """
  if not isinstance(handle, str):
    raise ValueError("Module handle must be a string, got %r." % (handle,))
  path = resolving.resolve(handle)
  module_files.read_module_def(path)
  saved_model = module_files.read_saved_model(path)
  return module_spec_lib.ModuleSpec(
      saved_model, checkpoint_path=module_files.variables_prefix(path))


def as_module_spec(spec) -> module_spec_lib.ModuleSpec:
  """Accepts a ModuleSpec or a handle string."""
  if isinstance(spec, module_spec_lib.ModuleSpec):
    return spec
  if isinstance(spec, str):
    return load_module_spec(spec)
  raise ValueError("Unknown module spec type: %r (expected a ModuleSpec or a "
                   "handle string)." % type(spec))
