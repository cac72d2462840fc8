"""Prints which shared fixtures work through hub_tf1's TF2 side, here.

What it prints (stdout): a first line naming the environment (Python,
TensorFlow, Keras and TF_USE_LEGACY_KERAS), then a markdown table with one
row per fixture (each `*.json` in tests/tf2_fixtures_lib.MODULES) and these
columns:
* `load`: tf2_fixtures_lib.apply_differences(hub_tf1.load, name).
* `KerasLayer (<keras>)`: the same through tests/tf2_keras_layer_test's
  `_LayerAsLoaded` (hub_tf1.KerasLayer under this Python's `tf.keras`).
* `fine-tune`: tf2_fixtures_lib.train_step_differences(hub_tf1.KerasLayer).
* `convert`: hub_tf1.convert into a fresh temporary directory (once per tag
  set of the fixture's `apply` checks), `tf.saved_model.load` of it in this
  process, and each `apply` call through its serving signature compared
  with the same call through hub_tf1.load (flattened components, the
  fixture's rtol/atol).  For broken_* fixtures: whether convert refuses
  them, whether the error is a hub_tf1.Error, and whether anything was left
  at the target path.
A cell is "ok", the first difference (with the count of the others), "-"
when the fixture has no such check, or "raises <Type>: <first line>" (the
fixtures' directory written <MODULES>, TensorFlow's "{{function_node ...}}"
prefix dropped, cut at 80 characters).

Run from the repository root, e.g.:
    PYTHONPATH=$PWD .venv/modern/bin/python tests/tf2_fixture_matrix.py
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=$PWD .venv/modern/bin/python \
        tests/tf2_fixture_matrix.py
    PYTHONPATH=$PWD .venv/legacy/bin/python tests/tf2_fixture_matrix.py

Rules of this file:
* A report, not a test: deliberately not named *_test.py so that test
  runners do not collect it; it asserts nothing.  The exit code is 0 when
  the table was printed, whatever its cells say; only a failure of the
  script itself (outside a cell) exits nonzero.
* The checks are the existing tests' own helpers (tf2_fixtures_lib and
  _LayerAsLoaded), called as the tests call them; nothing is re-implemented
  except the convert comparison, which is kept deliberately simple.
* It writes only temporary directories, removed before it exits.
"""

import os
import re
import sys
import tempfile
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import hub_tf1
from hub_tf1.tf2 import convert as convert_lib
from tests import tf2_fixtures_lib
from tests.tf2_keras_layer_test import _LayerAsLoaded  # pylint: disable=protected-access
# pylint: enable=g-import-not-at-top,wrong-import-position

_check_fixtures = tf2_fixtures_lib.check_fixtures
_MAX_DIFFERENCE = 110
_MAX_MESSAGE = 80


def keras_description() -> str:
  """Names what `tf.keras` is here, e.g. "tf.keras = Keras 3 (3.15.1)".

  Returns:
    The Keras flavour (tf_keras, Keras 2 or Keras 3) and its version.
  """
  layer_module = tf.keras.layers.Layer.__module__
  # tf_keras and Keras 2's tf.keras have no __version__: their package has.
  package = sys.modules.get(layer_module.split(".")[0])
  version = str(getattr(tf.keras, "__version__", None) or
                getattr(package, "__version__", "?"))
  if layer_module.startswith("tf_keras"):
    kind = "tf_keras"
  elif version.startswith("3."):
    kind = "Keras 3"
  else:
    kind = "Keras 2"
  return "tf.keras = %s %s" % (kind, version)


def environment_line() -> str:
  """The first printed line: Python, TensorFlow, Keras, TF_USE_LEGACY_KERAS."""
  return "environment: python %s, tensorflow %s, %s, TF_USE_LEGACY_KERAS=%s" % (
      sys.version.split()[0], tf.__version__, keras_description(),
      os.environ.get("TF_USE_LEGACY_KERAS", "(unset)"))


def _one_line(text: str, limit: int) -> str:
  line = (str(text).strip().splitlines() or [""])[0]
  line = line.replace(tf2_fixtures_lib.MODULES, "<MODULES>")
  line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
  return line if len(line) <= limit else line[:limit - 3] + "..."


def raised(e: BaseException) -> str:
  """A cell for an exception: "raises <Type>: <first line, <= 80 chars>"."""
  return "raises %s: %s" % (type(e).__name__, _one_line(str(e), _MAX_MESSAGE))


def differences_cell(reasons: List[str]) -> str:
  """"ok", or the first difference (short) and how many others there are."""
  if not reasons:
    return "ok"
  cell = _one_line(reasons[0], _MAX_DIFFERENCE)
  if len(reasons) > 1:
    cell += " (+%d more)" % (len(reasons) - 1)
  return cell


def _cell(compute: Callable[[], str]) -> str:
  try:
    return compute()
  except Exception as e:  # pylint: disable=broad-except
    return raised(e)


def _checks(fixture: dict, check_type: str) -> List[dict]:
  return [c for c in fixture["checks"] if c["type"] == check_type]


def _tags(check: dict) -> frozenset:
  return frozenset(_check_fixtures._tags_arg(check.get("tags")) or ())  # pylint: disable=protected-access


def _flat(value, key: str, type_spec: tf.TypeSpec) -> Dict[str, np.ndarray]:
  """`value`'s components by their serving-signature names."""
  components = tf.nest.flatten(value, expand_composites=True)
  return dict(zip(convert_lib.flat_names(key, type_spec),
                  [np.asarray(c) for c in components]))


def _compare_flat(expected: Dict[str, np.ndarray],
                  observed: Dict[str, np.ndarray], rtol: float, atol: float,
                  where: str) -> List[str]:
  """Differences between two {name: array} dicts (load vs. SavedModel)."""
  if sorted(expected) != sorted(observed):
    return ["%s: outputs %s, SavedModel gives %s" % (where, sorted(expected),
                                                     sorted(observed))]
  reasons = []
  for key in sorted(expected):
    e, o = expected[key], observed[key]
    if e.shape != o.shape:
      reasons.append("%s.%s: shape %s, SavedModel %s" % (where, key, e.shape,
                                                          o.shape))
    elif e.dtype.kind in "OSU" or o.dtype.kind in "OSU":
      if e.tolist() != o.tolist():
        reasons.append("%s.%s: strings differ" % (where, key))
    elif not np.allclose(o, e, rtol=rtol, atol=atol):
      reasons.append("%s.%s: max abs difference %g" % (
          where, key, float(np.max(np.abs(o.astype(np.float64) -
                                          e.astype(np.float64))))))
  return reasons


def convert_differences(name: str, work: str) -> List[str]:
  """Converts fixture `name` per apply tag set; SavedModel vs. hub_tf1.load.

  Args:
    name: a fixture with `apply` checks.
    work: an existing empty directory for the SavedModels.

  Returns:
    The differences (empty when every apply call matches).
  """
  fixture = tf2_fixtures_lib.read_fixture(name)
  handle = os.path.join(tf2_fixtures_lib.MODULES, fixture["module_dir"])
  rtol, atol = fixture.get("rtol", 1e-5), fixture.get("atol", 1e-5)
  reasons = []
  tag_sets = []
  for check in _checks(fixture, "apply"):
    if _tags(check) not in tag_sets:
      tag_sets.append(_tags(check))
  for n, tags in enumerate(tag_sets):
    export_dir = os.path.join(work, "saved_%d" % n)
    hub_tf1.convert(handle, export_dir, tags=tags)
    saved = tf.saved_model.load(export_dir)
    module = hub_tf1.load(handle, tags=tags)
    for check in _checks(fixture, "apply"):
      if _tags(check) != tags:
        continue
      for i, call in enumerate(check["calls"]):
        signature = call.get("signature") or "default"
        where = "%s/%s/call%d" % (check["id"], signature, i)
        if signature not in saved.signatures:
          reasons.append("%s: no signature %r in the SavedModel (has %s)" % (
              where, signature, sorted(saved.signatures)))
          continue
        args = tf2_fixtures_lib.call_inputs(module.spec, call, tags)
        in_infos = module.spec.get_input_info_dict(signature, tags)
        out_infos = module.spec.get_output_info_dict(signature, tags)
        flat_inputs = {}
        for key, value in args.items():
          flat_inputs.update(_flat(value, key, in_infos[key].type_spec))
        expected = {}
        for key, value in module.signatures[signature](**args).items():
          expected.update(_flat(value, key, out_infos[key].type_spec))
        observed = {k: np.asarray(v) for k, v in saved.signatures[signature](
            **{k: tf.constant(v) for k, v in flat_inputs.items()}).items()}
        reasons += _compare_flat(expected, observed, rtol, atol, where)
  return reasons


def convert_refusal(name: str, work: str) -> str:
  """A cell for converting a broken fixture: should raise, leave nothing.

  Args:
    name: a broken_* fixture with a module directory.
    work: an existing empty directory; the target is `work`/out.

  Returns:
    "raises <Type>: <message> [hub_tf1.Error or not; the type the fixture
    recorded for the original]; nothing left" (or what was left), or
    "converted (not refused)" when convert returned.
  """
  fixture = tf2_fixtures_lib.read_fixture(name)
  handle = os.path.join(tf2_fixtures_lib.MODULES, fixture["module_dir"])
  target = os.path.join(work, "out")
  try:
    hub_tf1.convert(handle, target)
    cell = "converted (not refused)"
  except Exception as e:  # pylint: disable=broad-except
    kind = ("hub_tf1.Error" if isinstance(e, hub_tf1.Error)
            else "not hub_tf1.Error")
    recorded = sorted({c["expected"].get("exception", "?")
                       for c in _checks(fixture, "error")})
    cell = "%s [%s; original raised %s]" % (raised(e), kind,
                                             "/".join(recorded) or "?")
  left = sorted(tf.io.gfile.listdir(work))
  return cell + ("; nothing left" if not left else "; left: %s" % left)


def _in_temp_dir(compute: Callable[[str], str]) -> str:
  work = tempfile.mkdtemp(prefix="tf2_fixture_matrix-")
  try:
    return compute(work)
  finally:
    if tf.io.gfile.exists(work):
      tf.io.gfile.rmtree(work)


def row(name: str) -> List[str]:
  """The cells of fixture `name`: name, load, KerasLayer, fine-tune, convert."""
  fixture = tf2_fixtures_lib.read_fixture(name)
  has_module = bool(fixture.get("module_dir")) and tf.io.gfile.isdir(
      os.path.join(tf2_fixtures_lib.MODULES, fixture.get("module_dir") or ""))
  has_apply = bool(_checks(fixture, "apply"))
  has_train = bool(_checks(fixture, "train_step"))
  cells = [name]
  if has_apply:
    cells.append(_cell(lambda: differences_cell(
        tf2_fixtures_lib.apply_differences(hub_tf1.load, name))))
    cells.append(_cell(lambda: differences_cell(
        tf2_fixtures_lib.apply_differences(_LayerAsLoaded, name))))
  else:
    cells += ["-", "-"]
  if has_train:
    cells.append(_cell(lambda: differences_cell(
        tf2_fixtures_lib.train_step_differences(hub_tf1.KerasLayer, name))))
  else:
    cells.append("-")
  if has_apply:
    cells.append(_cell(lambda: _in_temp_dir(
        lambda work: differences_cell(convert_differences(name, work)))))
  elif name.startswith("broken_") and has_module:
    cells.append(_cell(lambda: _in_temp_dir(
        lambda work: convert_refusal(name, work))))
  elif not has_module:
    cells.append("- (no module dir: tarball)")
  else:
    cells.append("-")
  return cells


def _markdown(cells: List[str]) -> str:
  return "| %s |" % " | ".join(c.replace("|", "\\|") for c in cells)


def fixture_names() -> List[str]:
  """Every fixture: the `*.json` files of tf2_fixtures_lib.MODULES, sorted."""
  return sorted(n[:-len(".json")]
                for n in tf.io.gfile.listdir(tf2_fixtures_lib.MODULES)
                if n.endswith(".json"))


def main(argv: Optional[List[str]] = None) -> int:
  """Prints the environment line and the table.

  Args:
    argv: unused (no options).

  Returns:
    0: the table was printed (its cells may show failures).
  """
  del argv
  header = ["fixture", "load", "KerasLayer (%s)" % keras_description(),
            "fine-tune", "convert"]
  print(environment_line())
  print()
  print(_markdown(header))
  print(_markdown(["---"] * len(header)))
  sys.stdout.flush()
  for name in fixture_names():
    print(_markdown(row(name)))
    sys.stdout.flush()
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
