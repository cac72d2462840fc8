"""pytest plugin: installs hub_tf1's Estimator compatibility layer first.

Loaded with `-p conformance_plugin` by `run.py` (its directory and the
repository root are on PYTHONPATH).  Rules of this file:
* It changes nothing but what `compat.install()` changes, and does so before
  pytest imports any test file (pytest_configure runs before collection), so
  the upstream test files see the Estimator the way a hub_tf1 job does.  On
  TensorFlow <= 2.15 `install()` is a no-op and the run is upstream's own.
* One exception, about the test files and not the Estimator: when
  $ESTIMATOR_CONFORMANCE_UNITTEST_ALIASES is "1" (run.py's default), the
  `unittest.TestCase` method aliases that Python 3.12 removed
  (`assertEquals`, `assertRegexpMatches`, ...) and that the upstream files
  still call are put back as the names they stood for, and only where the
  running Python lacks them.  Without it, on Python >= 3.12 those tests fail
  with AttributeError before they reach the Estimator.
* When $ESTIMATOR_CONFORMANCE_INFO names a file, it writes there (atomically)
  a small JSON record of the interpreter: TensorFlow version, Python version,
  whether the layer is active.  Nothing else is written.
"""

import json
import os
import platform
import tempfile

INFO_ENV = "ESTIMATOR_CONFORMANCE_INFO"
ALIASES_ENV = "ESTIMATOR_CONFORMANCE_UNITTEST_ALIASES"

# Removed in Python 3.12 (deprecated since 3.2) -> the method each stood for.
_REMOVED_ALIASES = {
    "assertEquals": "assertEqual",
    "assertNotEquals": "assertNotEqual",
    "assertAlmostEquals": "assertAlmostEqual",
    "assertNotAlmostEquals": "assertNotAlmostEqual",
    "assertRegexpMatches": "assertRegex",
    "assertNotRegexpMatches": "assertNotRegex",
    "assertRaisesRegexp": "assertRaisesRegex",
    "assert_": "assertTrue",
    "failUnless": "assertTrue",
    "failIf": "assertFalse",
    "failUnlessEqual": "assertEqual",
    "failIfEqual": "assertNotEqual",
    "failUnlessAlmostEqual": "assertAlmostEqual",
    "failIfAlmostEqual": "assertNotAlmostEqual",
    "failUnlessRaises": "assertRaises",
}


def restore_unittest_aliases() -> list:
  """Puts back the TestCase aliases this Python removed.

  Returns:
    The names added (empty on Python <= 3.11, which still has them all).
  """
  import unittest  # pylint: disable=g-import-not-at-top
  added = []
  for alias, target in sorted(_REMOVED_ALIASES.items()):
    if not hasattr(unittest.TestCase, alias):
      setattr(unittest.TestCase, alias, getattr(unittest.TestCase, target))
      added.append(alias)
  return added


def pytest_configure(config) -> None:
  """Installs the compatibility layer and records what it did.

  Args:
    config: the pytest config (unused).
  """
  del config  # Unused.
  aliases = (restore_unittest_aliases()
             if os.environ.get(ALIASES_ENV) == "1" else [])
  # pylint: disable=g-import-not-at-top
  from estimator_integration import compat
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  active = compat.install()
  path = os.environ.get(INFO_ENV)
  if path:
    _write_json(path, {
        "tf_version": tf.__version__,
        "python_version": platform.python_version(),
        "compat_active": bool(active),
        "unittest_aliases_restored": aliases,
    })


def _write_json(path: str, record: dict) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".info.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(record, f)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
