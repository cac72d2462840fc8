"""`load_module_spec`: handle -> local directory -> ModuleSpec."""

from typing import Optional

import tensorflow as tf

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

  Returns:
    The ModuleSpec (its weights stay on disk until a Module restores them).

  Raises:
    ValueError: `handle` is not a string; an unsupported format version or
      required feature in `tfhub_module.pb`; a malformed graph collection.
    tf.errors.NotFoundError: no `tfhub_module.pb` (not a TF1 Hub module) or
      no `saved_model.pb`.
    IOError: an unreadable or corrupt `saved_model.pb`.
    hub_tf1.UnsafeModuleError: op policy "strict" and flagged ops (a
      ValueError).
    Errors of `hub_tf1.resolve` (bad handle, download, archive and cache
      errors; see its docstring).
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
  """A ModuleSpec for `spec`: itself, or loaded from a handle.

  Args:
    spec: a ModuleSpec, or a handle as str or bytes (loaded with the op
      policy of the environment, see `load_module_spec`).

  Returns:
    The ModuleSpec.

  Raises:
    ValueError: `spec` is neither.
    Errors of `load_module_spec` for a handle.
  """
  if isinstance(spec, module_spec_lib.ModuleSpec):
    return spec
  if isinstance(spec, (str, bytes)):
    return load_module_spec(tf.compat.as_str_any(spec), op_policy="default")
  raise ValueError("Unknown module spec type: %r (expected a ModuleSpec or a "
                   "handle string)." % type(spec))
