"""`load_module_spec`: handle -> local directory -> ModuleSpec."""

from typing import Optional

from hub_tf1 import resolving
from hub_tf1.format import module_files
from hub_tf1.inspection import scan as scan_lib
from hub_tf1.spec import module_spec as module_spec_lib


def load_module_spec(handle: str,
                     op_policy: Optional[str] = None
                     ) -> module_spec_lib.ModuleSpec:
  """Resolves `handle` (path or URL) and reads the module found there.

  Args:
    handle: module path, URL or cached handle.
    op_policy: "strict" refuses a module with flagged ops (nothing of it
      runs); default: $HUB_TF1_OP_POLICY, else no check.

  Raises:
    tf.errors.NotFoundError: no `tfhub_module.pb` (not a TF1 Hub module).
    ValueError: unsupported format version or required features.
    IOError: unreadable `saved_model.pb`.
    hub_tf1.UnsafeModuleError: op policy "strict" and flagged ops.
  """
  if not isinstance(handle, str):
    raise ValueError("Module handle must be a string, got %r." % (handle,))
  path = resolving.resolve(handle)
  module_files.read_module_def(path)
  saved_model = module_files.read_saved_model(path)
  spec = module_spec_lib.ModuleSpec(
      saved_model, checkpoint_path=module_files.variables_prefix(path))
  scan_lib.check_policy(spec, handle, op_policy)
  return spec


def as_module_spec(spec) -> module_spec_lib.ModuleSpec:
  """Accepts a ModuleSpec or a handle string (op policy left to the caller)."""
  if isinstance(spec, module_spec_lib.ModuleSpec):
    return spec
  if isinstance(spec, str):
    return load_module_spec(spec, op_policy="default")
  raise ValueError("Unknown module spec type: %r (expected a ModuleSpec or a "
                   "handle string)." % type(spec))
