"""Every public name of hub_tf1 has a docstring whose Args match its code.

Public: what `import hub_tf1` offers (its attributes and the lazily
imported names of later layers), and of a public class its public methods
and properties plus `__init__` and `__call__`.  A function with parameters
(other than self/cls, `_sentinel`-style and */** ones) must document each
of them under "Args:".
"""

import importlib
import inspect
import pkgutil
import re

from absl.testing import absltest

import hub_tf1


def _public_names():
  names = {n for n in dir(hub_tf1) if not n.startswith("_")}
  names.update(hub_tf1._LAZY_NAMES)  # pylint: disable=protected-access
  return sorted(names)


def _documented_args(doc: str):
  section = doc.split("Args:", 1)[1]
  section = re.split(r"\n(?:Returns|Yields|Raises):", section)[0]
  return set(re.findall(r"^\s{2,4}(\*{0,2}\w+):", section, re.M))


def problems_of(qualname: str, obj) -> list:
  """What is missing from `obj`'s docstring (empty if nothing)."""
  doc = inspect.getdoc(obj) or ""
  if not doc:
    return ["%s: no docstring" % qualname]
  if not inspect.isfunction(obj):
    return []
  params = [
      name for name, p in inspect.signature(obj).parameters.items()
      if name not in ("self", "cls") and not name.startswith("_") and
      p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
  if not params:
    return []
  if "Args:" not in doc:
    return ["%s: no Args section for %s" % (qualname, params)]
  missing = sorted(set(params) - _documented_args(doc))
  return ["%s: Args lacks %s" % (qualname, missing)] if missing else []


def _members(cls):
  for name, value in sorted(vars(cls).items()):
    if name.startswith("_") and name not in ("__init__", "__call__"):
      continue
    if isinstance(value, property):
      yield name, value.fget
    elif isinstance(value, (classmethod, staticmethod)):
      yield name, value.__func__
    elif inspect.isfunction(value):
      yield name, value


class PublicApiDocsTest(absltest.TestCase):

  def test_every_public_name_is_documented(self):
    problems = []
    for name in _public_names():
      try:
        obj = getattr(hub_tf1, name)
      except AttributeError:
        continue  # e.g. no tf.estimator here: the name says why on use.
      if inspect.ismodule(obj) or not callable(obj):
        continue
      problems += problems_of(name, obj)
      if inspect.isclass(obj) and (obj.__module__ or "").startswith(
          ("hub_tf1", "estimator_integration")):
        for member, function in _members(obj):
          problems += problems_of("%s.%s" % (name, member), function)
    self.assertEqual(problems, [])

  def test_the_check_finds_an_undocumented_arg(self):

    def documented(a, b):
      """Does.

      Args:
        a: one.
      """
      del a, b

    self.assertEqual(problems_of("f", documented), ["f: Args lacks ['b']"])
    self.assertEqual(problems_of("g", lambda x: x), ["g: no docstring"])


class ErrorBaseTest(absltest.TestCase):

  def test_every_exception_class_of_ours_derives_from_hub_tf1_error(self):
    packages = [hub_tf1, importlib.import_module("estimator_integration")]
    offenders, seen = [], 0
    for package in packages:
      for info in pkgutil.walk_packages(package.__path__,
                                        package.__name__ + "."):
        if ".compat" in info.name or info.name.endswith("__main__"):
          continue  # compat stands in for TensorFlow's own modules.
        try:
          module = importlib.import_module(info.name)
        except ImportError:
          continue  # e.g. the Estimator layer on a TF without one.
        for name, value in vars(module).items():
          if (inspect.isclass(value) and issubclass(value, BaseException)
              and value.__module__ == module.__name__):
            seen += 1
            if not issubclass(value, hub_tf1.Error):
              offenders.append("%s.%s" % (module.__name__, name))
    self.assertGreater(seen, 10)  # The walk found our exception classes.
    self.assertEqual(offenders, [])


if __name__ == "__main__":
  absltest.main()
