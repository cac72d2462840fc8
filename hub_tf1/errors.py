"""The one base class of every exception hub_tf1 defines.

Rules of this file:
* `Error` carries no behaviour; it is mixed into exceptions that also derive
  from the builtin (or TensorFlow) class the original tensorflow_hub raised in
  the same situation, e.g. `class UnsafeModuleError(Error, ValueError)`, so
  `except ValueError` keeps working and `except hub_tf1.Error` catches all of
  ours.
* Nothing here imports TensorFlow or another hub_tf1 module: every layer may
  import this file.
"""


class Error(Exception):
  """Base class of the exceptions hub_tf1 raises itself."""
