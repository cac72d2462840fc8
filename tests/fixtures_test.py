"""The reference fixtures (written by tensorflow_hub 0.15) through hub_tf1.

Each fixture in tests/testdata/fixtures/ref_modules is one test case: every
check of its expectations JSON must be reproduced (values, signatures,
variables, collections, errors, cache layout).  The TF1-behaviour run
(`disable_v2_behavior()`) happens in a subprocess because that switch is
process-wide.
"""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "testdata", "fixtures")
_MODULES = os.path.join(_FIXTURES, "ref_modules")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _FIXTURES)

import check_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position


def _fixture_names():
  return sorted(name[:-len(".json")] for name in os.listdir(_MODULES)
                if name.endswith(".json"))


class FixturesTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.env = check_fixtures.Env("hub_tf1")

  @parameterized.parameters(*_fixture_names())
  def test_fixture(self, name):
    with open(os.path.join(_MODULES, name + ".json")) as f:
      fixture = json.load(f)
    reasons = check_fixtures.check_fixture(self.env, _MODULES, fixture)
    self.assertEqual(reasons, [], "\n".join(reasons))


class FixturesTf1BehaviorTest(absltest.TestCase):

  def test_all_fixtures_with_tf1_behavior(self):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [_REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    result = subprocess.run(
        [sys.executable, os.path.join(_FIXTURES, "check_fixtures.py"),
         "--impl", "hub_tf1", "--tf1-behavior", _MODULES],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900, check=False)
    lines = result.stdout.splitlines()
    failures = [l for l in lines if l.startswith("FAIL ")]
    passes = [l for l in lines if l.startswith("PASS ")]
    self.assertEqual(failures, [])
    self.assertLen(passes, len(_fixture_names()), result.stdout[-3000:])
    self.assertEqual(result.returncode, 0, result.stdout[-3000:])


if __name__ == "__main__":
  absltest.main()
