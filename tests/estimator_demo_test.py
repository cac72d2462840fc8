"""Runs the demo job (python -m examples.estimator_demo) in --local mode.

The demo makes a module with create_module_spec, fine-tunes it with
train_and_evaluate in this one process, exports it with LatestModuleExporter
and checks the newest export against the final checkpoint; it exits non-zero
when any step fails.  (The cluster mode runs in cluster_demo_test.py.)
"""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

import estimator_integration  # pylint: disable=unused-import

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GUARD_SECS = 600  # Hang guard only.


def run_demo(test: absltest.TestCase, *flags: str) -> str:
  """Runs the demo with `flags`; asserts success; returns its stdout."""
  output_dir = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      [_REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  env["CUDA_VISIBLE_DEVICES"] = ""
  done = subprocess.run(
      [sys.executable, "-m", "examples.estimator_demo",
       "--output_dir=" + output_dir] + list(flags),
      env=env, capture_output=True, text=True, timeout=_GUARD_SECS,
      check=False)
  test.assertEqual(done.returncode, 0,
                   "demo failed:\n%s\n%s" % (done.stdout[-5000:],
                                            done.stderr[-5000:]))
  test.assertIn("[demo] Demo finished OK", done.stdout)
  test.assertIn("variables equal those of the final checkpoint", done.stdout)
  test.assertIn("'words' signature of the export agrees with the table: True",
                done.stdout)
  test.assertTrue(os.path.isfile(
      os.path.join(output_dir, "module", "tfhub_module.pb")))
  return done.stdout


class DemoTest(absltest.TestCase):

  def test_local_demo(self):
    stdout = run_demo(self, "--local", "--max_steps=80",
                      "--step_delay_secs=0")
    self.assertIn("Training locally", stdout)
    self.assertIn("final checkpoint model.ckpt-80: True", stdout)

  def test_local_demo_direct_module_path(self):
    stdout = run_demo(self, "--local", "--max_steps=40",
                      "--step_delay_secs=0", "--nouse_feature_column")
    self.assertIn("text_module/embeddings/part_0", stdout)


if __name__ == "__main__":
  absltest.main()
