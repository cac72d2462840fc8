"""The import graph runs one way: core <- Estimator layer (issue 15, item 1).

Each check runs in a fresh interpreter, because what matters is what an
import pulls in from nothing.
"""

import ast
import os
import re
import subprocess
import sys
import textwrap

from absl.testing import absltest


def _run(code: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                        capture_output=True, text=True, check=False)


_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Private TensorFlow members the code base has needed (issue 15, item 3).
_PRIVATE_CALL = re.compile(
    r"tensorflow\.python|\._(set_attr|clear_attr|set_device|"
    r"get_control_flow_context|import_graph_def_internal|"
    r"set_save_slice_info|DenseColumn)\b")


def _python_files(package: str):
  for root, _, files in os.walk(os.path.join(_REPO, package)):
    for name in sorted(files):
      if name.endswith(".py"):
        yield os.path.join(root, name)


class PrivateTensorFlowApiTest(absltest.TestCase):

  def test_only_tf_internal_uses_private_tensorflow(self):
    allowed = {os.path.join(_REPO, "hub_tf1", "_tf_internal.py")}
    offenders = []
    for package in ("hub_tf1", "estimator_integration"):
      for path in _python_files(package):
        if path in allowed or os.sep + "compat" + os.sep in path:
          continue  # compat/ stands in for removed private modules.
        with open(path) as f:
          for number, line in enumerate(f, 1):
            if _PRIVATE_CALL.search(line.split("#")[0]):
              offenders.append("%s:%d: %s" % (
                  os.path.relpath(path, _REPO), number, line.strip()))
    self.assertEqual(offenders, [])

  def test_examples_and_tools_use_no_private_tensorflow(self):
    offenders = []
    for package in ("examples", "tools"):
      for path in _python_files(package):
        with open(path) as f:
          offenders += ["%s:%d" % (os.path.relpath(path, _REPO), n)
                        for n, line in enumerate(f, 1)
                        if _PRIVATE_CALL.search(line.split("#")[0])]
    self.assertEqual(offenders, [])

  def test_library_never_imports_examples_or_tools(self):
    pattern = re.compile(r"^\s*(from|import)\s+(examples|tools)\b", re.M)
    offenders = []
    for package in ("hub_tf1", "estimator_integration"):
      for path in _python_files(package):
        with open(path) as f:
          if pattern.search(f.read()):
            offenders.append(os.path.relpath(path, _REPO))
    self.assertEqual(offenders, [])

  def test_the_check_finds_a_private_use(self):
    self.assertTrue(_PRIVATE_CALL.search(
        "from tensorflow.python.ops import ref_variable"))
    self.assertTrue(_PRIVATE_CALL.search("op._set_device(d)"))
    self.assertFalse(_PRIVATE_CALL.search("tf.compat.v1.import_graph_def("))


def _module_level_imports(package_roots):
  """module -> our modules it imports at import time (from the source)."""
  paths = {}
  for package in package_roots:
    for path in _python_files(package):
      name = os.path.relpath(path, _REPO)[:-len(".py")].replace(os.sep, ".")
      paths[name[:-len(".__init__")] if name.endswith(".__init__")
            else name] = path
  graph = {}
  for name, path in paths.items():
    with open(path) as f:
      tree = ast.parse(f.read())
    deps = set()
    for node in tree.body:
      if isinstance(node, ast.Import):
        deps.update(a.name for a in node.names if a.name in paths)
      elif isinstance(node, ast.ImportFrom) and node.module and not (
          node.level):
        subs = {"%s.%s" % (node.module, a.name) for a in node.names} & set(
            paths)
        deps.update(subs or ({node.module} & set(paths)))
    graph[name] = deps - {name}
  return graph


def _a_cycle(graph):
  """One import cycle of `graph` as a list of modules, or None."""
  state, stack = {}, []

  def visit(name):
    state[name] = "open"
    stack.append(name)
    for dep in sorted(graph.get(name, ())):
      if state.get(dep) == "open":
        return stack[stack.index(dep):] + [dep]
      if dep not in state:
        found = visit(dep)
        if found:
          return found
    stack.pop()
    state[name] = "done"
    return None

  for name in sorted(graph):
    if name not in state:
      found = visit(name)
      if found:
        return found
  return None


class ImportCycleTest(absltest.TestCase):

  def test_no_module_imports_itself_back(self):
    # Module-level imports only: what runs when a module is first imported
    # (a package's re-exports of its own submodules are not edges back).
    graph = _module_level_imports(("hub_tf1", "estimator_integration"))
    self.assertGreater(len(graph), 50)
    self.assertIsNone(_a_cycle(graph))

  def test_the_check_finds_a_cycle(self):
    self.assertEqual(_a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}),
                     ["a", "b", "c", "a"])
    self.assertIsNone(_a_cycle({"a": {"b"}, "b": set()}))


class ImportLayeringTest(absltest.TestCase):

  def test_core_imports_only_the_compat_package_of_the_estimator_layer(self):
    # estimator_integration.compat sits below the core (it only patches
    # TensorFlow); nothing else of the Estimator layer, and nothing of the
    # Estimator or tf_keras, may come with `import hub_tf1`.
    result = _run("""
        import sys
        import hub_tf1
        print(sorted(m for m in sys.modules
                     if m.split(".")[0] in ("estimator_integration",
                                            "tensorflow_estimator", "tf_keras")
                     and not m.startswith("estimator_integration.compat")))
        """)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stdout.strip().splitlines()[-1],
                     "['estimator_integration']")

  def test_compat_package_imports_nothing_of_ours(self):
    result = _run("""
        import sys
        from estimator_integration import compat
        compat.install(required=False)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "hub_tf1" or
                     (m.startswith("estimator_integration.") and
                      not m.startswith("estimator_integration.compat"))))
        """)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stdout.strip().splitlines()[-1], "[]")

  def test_estimator_layer_imported_first_then_core(self):
    result = _run("""
        import estimator_integration
        import hub_tf1
        assert hub_tf1.LatestModuleExporter is (
            estimator_integration.LatestModuleExporter)
        print("same")
        """)
    if "no tf.estimator" in result.stderr:
      self.skipTest("this TensorFlow has no Estimator")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stdout.strip().splitlines()[-1], "same")

  def test_bug_in_estimator_layer_is_not_reported_as_missing_estimator(self):
    # A module of the Estimator layer that fails to import for another reason
    # must surface its own error, not "needs tf.estimator".
    result = _run("""
        import sys
        import hub_tf1
        from hub_tf1 import _estimator_check
        if _estimator_check.missing_reason():
          print("no-estimator")
          sys.exit(0)
        sys.modules["estimator_integration.exporter"] = None  # import fails
        try:
          hub_tf1.LatestModuleExporter
        except ImportError as e:
          print("ImportError", "needs tf.estimator" in str(e))
        """)
    self.assertEqual(result.returncode, 0, result.stderr)
    last = result.stdout.strip().splitlines()[-1]
    if last == "no-estimator":
      self.skipTest("this TensorFlow has no Estimator")
    self.assertEqual(last, "ImportError False")

  def test_missing_estimator_message_names_version(self):
    result = _run("""
        import hub_tf1
        from hub_tf1 import _estimator_check
        reason = _estimator_check.missing_reason()
        try:
          hub_tf1.text_embedding_column
          print("available", reason is None)
        except AttributeError as e:
          print("missing", "needs tf.estimator" in str(e) and
                "TensorFlow" in str(e))
        """)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn(result.stdout.strip().splitlines()[-1],
                  ("available True", "missing True"))

  def test_unknown_name(self):
    result = _run("""
        import hub_tf1
        try:
          hub_tf1.no_such_name
        except AttributeError as e:
          print(e)
        """)
    self.assertIn("no attribute 'no_such_name'", result.stdout)


if __name__ == "__main__":
  absltest.main()
