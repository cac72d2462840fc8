"""Runs one Python snippet against tensorflow_hub 0.15 and against hub_tf1.

Rules of this file:
- The snippet is the same source text for both implementations; only the
  module bound to the name `hub` differs (`tensorflow_hub` in .venv/ref,
  `hub_tf1` under the interpreter running the test).
- Each run is a fresh subprocess, so graphs, caches and flags never leak
  between the two runs or into the test process.
- The snippet reports results by calling `emit(key, value)` with
  JSON-serializable values; `run` returns the dict of emitted values.
- Snippets get `tf`, `hub`, `os`, `json` and `TMP` (a scratch directory of
  their own) as globals.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, Optional

from absl.testing import absltest

_HERE = os.path.dirname(os.path.realpath(__file__))
_ROOT = os.path.dirname(_HERE)
REF_PYTHON = os.path.join(_ROOT, ".venv", "ref", "bin", "python")

_PRELUDE = """
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
import {module} as hub
TMP = {tmp!r}
_OUT = {{}}
def emit(key, value):
  _OUT[key] = value
"""
_EPILOGUE = """
with open({out!r}, "w") as _f:
  json.dump(_OUT, _f)
"""


def ref_available() -> bool:
  return os.path.exists(REF_PYTHON)


def skip_without_ref(test_case) -> None:
  """Skips `test_case` saying why when the reference venv is missing."""
  if not ref_available():
    test_case.skipTest("no tensorflow_hub 0.15 reference venv at %s (made by "
                       "tools/bootstrap.sh ref)" % REF_PYTHON)


def run(code: str, reference: bool, tmp_base: Optional[str] = None,
        timeout: int = 300) -> Dict[str, object]:
  """Runs `code` with `hub` = the original (`reference`) or hub_tf1.

  Args:
    code: Python source of the snippet (see the file docstring).
    reference: run under .venv/ref with tensorflow_hub, else under this
      interpreter with hub_tf1.
    tmp_base: where to make the snippet's scratch directory.
    timeout: seconds before the subprocess is killed.

  Returns:
    The values the snippet emitted.

  Raises:
    AssertionError: the subprocess failed; its stderr tail is the message.
  """
  base = tmp_base or os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
  tmp = tempfile.mkdtemp(prefix="ref_" if reference else "ours_", dir=base)
  out = os.path.join(tmp, "_out.json")
  script = os.path.join(tmp, "_snippet.py")
  with open(script, "w") as f:
    f.write(_PRELUDE.format(
        module="tensorflow_hub" if reference else "hub_tf1", tmp=tmp))
    f.write(code)
    f.write(_EPILOGUE.format(out=out))
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  env["TFHUB_CACHE_DIR"] = os.path.join(tmp, "_cache")
  if not reference:
    env["PYTHONPATH"] = _ROOT
  python = REF_PYTHON if reference else sys.executable
  result = subprocess.run([python, script], env=env, cwd=tmp,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, check=False)
  if result.returncode != 0:
    raise AssertionError("%s snippet failed (rc %d):\n%s" % (
        "reference" if reference else "hub_tf1", result.returncode,
        result.stderr[-6000:]))
  with open(out) as f:
    return json.load(f)


def run_both(code: str, tmp_base: Optional[str] = None):
  """(original's emitted values, hub_tf1's emitted values) for `code`."""
  return run(code, True, tmp_base), run(code, False, tmp_base)


class BothRunsTestCase(absltest.TestCase):
  """Runs the class's SNIPPET once in each implementation, for all its tests.

  `results()` skips without .venv/ref and returns (original's emitted
  values, hub_tf1's), computed on first use and kept for the class.
  """

  SNIPPET = ""
  _results = None

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._results = None

  def results(self):
    skip_without_ref(self)
    if type(self)._results is None:
      base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
      type(self)._results = run_both(
          self.SNIPPET, tempfile.mkdtemp(prefix=type(self).__name__ + "_",
                                         dir=base))
    return type(self)._results
