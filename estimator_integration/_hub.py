"""Late access to the hub_tf1 core.

`hub_tf1/__init__.py` re-exports names from this package, so this package must
not import `hub_tf1` while it is itself being imported (whichever of the two is
imported first would see the other half-initialised).  Code here calls these
functions at run time instead.
"""

import importlib
import types


def hub() -> types.ModuleType:
  """The `hub_tf1` package (Module, load_module_spec, ...)."""
  return importlib.import_module("hub_tf1")


def fileio() -> types.ModuleType:
  """`hub_tf1.fileio`: atomic writes and renames."""
  return importlib.import_module("hub_tf1.fileio")
