"""Puts `estimator` back onto TensorFlow's API namespaces, and keeps it there.

TensorFlow >= 2.16 has no `tf.estimator`.  Three facts shape this file:
* `tf.compat.v1` reached as an attribute and `tensorflow.compat.v1` reached by
  `import tensorflow.compat.v1` are different module objects (the second
  import runs the same `__init__.py` again under a new name and rebinds
  `tf.compat`), and legacy jobs hold either one.  So the attributes go on every
  such namespace that exists now, and an import hook adds them to the ones
  created later.
* Importing the Estimator API costs ~0.3 s and pulls in `tf_keras`, which an
  `import hub_tf1` must not pay: the attributes are lazy stand-ins that import
  the real API module on first use and then put it in their own place.
* `tf.compat.v1.layers.*` under Keras 3 fail with "`dense` is not available
  with Keras 3." and no way out; the guard here re-raises naming the fix.

Rules of this file: it only adds attributes TensorFlow lacks (never replaces
one that is real), and it imports nothing of the Estimator until a job uses it.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types

# Where each namespace's `estimator` attribute comes from.
_V1_API = "tensorflow_estimator.python.estimator.api._v1.estimator"
_V2_API = "tensorflow_estimator.python.estimator.api._v2.estimator"
# Module names under which TensorFlow's namespaces exist (the attribute path
# `tf.compat.v1` is `tensorflow._api.v2.compat.v1`).
_NAMESPACES = {
    "tensorflow": _V2_API,
    "tensorflow.compat.v1": _V1_API,
    "tensorflow.compat.v2": _V2_API,
    "tensorflow._api.v2.compat.v1": _V1_API,
    "tensorflow._api.v2.compat.v2": _V2_API,
}
_COMPAT_PARENTS = ("tensorflow.compat", "tensorflow._api.v2.compat")
# `import tensorflow.compat.v1.estimator` (and `from ... import`) works on
# TF 2.15, where these are real packages: here they are aliases.
_ALIASES = {
    "tensorflow.estimator": _V2_API,
    "tensorflow.compat.v1.estimator": _V1_API,
    "tensorflow.compat.v2.estimator": _V2_API,
}

LEGACY_KERAS_FIX = (
    "set the environment variable TF_USE_LEGACY_KERAS=1 before TensorFlow is "
    "imported (e.g. `export TF_USE_LEGACY_KERAS=1`, or "
    "os.environ['TF_USE_LEGACY_KERAS'] = '1' as the first line of the job); "
    "tf-keras is installed, so the Keras 2 layers then back tf.compat.v1.layers")


class _LazyApi(types.ModuleType):
  """Stands for an Estimator API module until it is first used."""

  def __init__(self, target: str):
    super().__init__(target)
    self._target = target

  def _load(self) -> types.ModuleType:
    real = importlib.import_module(self._target)
    attach_everywhere()  # Now with the real modules.
    return real

  def __getattr__(self, name: str):
    if name.startswith("__"):
      raise AttributeError(name)
    return getattr(self._load(), name)

  def __dir__(self):
    return dir(self._load())

  def __repr__(self):
    return "<lazy module %r (hub_tf1 Estimator compatibility)>" % self._target


class _LegacyLayersGuard(types.ModuleType):
  """Wraps `tf.compat.v1.layers`; names the fix when Keras 3 refuses a layer."""

  def __init__(self, original: types.ModuleType):
    super().__init__(getattr(original, "__name__", "tf.compat.v1.layers"))
    self._original = original

  def __getattr__(self, name: str):
    try:
      return getattr(self._original, name)
    except AttributeError as e:
      if "Keras 3" not in str(e):
        raise
      raise AttributeError(
          "tf.compat.v1.layers.%s does not exist while tf.keras is Keras 3 "
          "(TensorFlow >= 2.16 default): %s" % (name, LEGACY_KERAS_FIX)) from e

  def __dir__(self):
    return dir(self._original)


def _api_for(target: str) -> types.ModuleType:
  return sys.modules.get(target) or _LazyApi(target)


def _attach_to(namespace: types.ModuleType, target: str) -> None:
  current = namespace.__dict__.get("estimator")
  if current is None or isinstance(current, _LazyApi):
    namespace.estimator = _api_for(target)
  if target == _V1_API:
    layers = namespace.__dict__.get("layers")
    if layers is not None and not isinstance(layers, _LegacyLayersGuard):
      namespace.layers = _LegacyLayersGuard(layers)


def attach_everywhere() -> None:
  """Adds `estimator` (and the layers guard) to every TF namespace loaded."""
  for name, target in _NAMESPACES.items():
    namespace = sys.modules.get(name)
    if namespace is not None:
      _attach_to(namespace, target)
  tf = sys.modules.get("tensorflow")
  compat = getattr(tf, "compat", None)
  for version, target in (("v1", _V1_API), ("v2", _V2_API)):
    namespace = getattr(compat, version, None)
    if isinstance(namespace, types.ModuleType):
      _attach_to(namespace, target)


class _AttachAfterImport(importlib.abc.MetaPathFinder):
  """Runs `attach_everywhere` after `import tensorflow.compat[.v1|.v2]`."""

  _NAMES = frozenset(_NAMESPACES) | frozenset(_COMPAT_PARENTS)

  def find_spec(self, fullname, path, target=None):
    alias = _alias_target(fullname)
    if alias is not None:
      return importlib.util.spec_from_loader(fullname, _AliasLoader(alias))
    if fullname not in self._NAMES or fullname == "tensorflow":
      return None
    spec = None
    for finder in sys.meta_path:  # The real finders answer.
      if finder is self or not hasattr(finder, "find_spec"):
        continue
      spec = finder.find_spec(fullname, path, target)
      if spec is not None:
        break
    if spec is None or spec.loader is None:
      return spec
    exec_module = spec.loader.exec_module

    def exec_then_attach(module, _exec=exec_module):
      _exec(module)
      attach_everywhere()

    spec.loader = _LoaderWithHook(spec.loader, exec_then_attach)
    return spec


def _alias_target(fullname: str):
  for prefix, target in _ALIASES.items():
    if fullname == prefix or fullname.startswith(prefix + "."):
      return target + fullname[len(prefix):]
  return None


class _AliasLoader(importlib.abc.Loader):
  """Imports the Estimator's own module and hands it out under the alias."""

  def __init__(self, target: str):
    self._target = target
    self._own_spec = None

  def create_module(self, spec):
    del spec  # Unused: the module keeps its own name.
    module = importlib.import_module(self._target)
    self._own_spec = module.__spec__
    attach_everywhere()
    return module

  def exec_module(self, module):
    # Already executed under its own name; the import system has just set
    # the alias's spec on it, which would misname it: put its own back.
    module.__spec__ = self._own_spec


class _LoaderWithHook(importlib.abc.Loader):
  """A loader that runs the real one, then a hook."""

  def __init__(self, loader, exec_module):
    self._loader = loader
    self._exec_module = exec_module

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    self._exec_module(module)


def install_hook() -> None:
  """Adds the import hook once, and attaches to what is loaded now."""
  if not any(isinstance(f, _AttachAfterImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AttachAfterImport())
  attach_everywhere()
