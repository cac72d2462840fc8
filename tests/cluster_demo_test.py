"""Runs the demo job in its default mode: a local parameter-server cluster.

1 chief + 2 workers + 2 ps + 1 evaluator as separate processes; the demo
itself checks the placement of the module's variables on the ps tasks and
that the newest export equals the final checkpoint, and exits non-zero
otherwise.  (The --local mode runs in estimator_demo_test.py.)
"""

import os
import re
import subprocess
import sys
import tempfile

from absl.testing import absltest

import estimator_integration  # pylint: disable=unused-import

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GUARD_SECS = 900  # Hang guard only.


class ClusterDemoTest(absltest.TestCase):

  def test_cluster_demo(self):
    output_dir = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [_REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                   if p])
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, "-m", "examples.estimator_demo",
         "--output_dir=" + output_dir, "--max_steps=300"],
        env=env, capture_output=True, text=True, timeout=_GUARD_SECS,
        check=False)
    stdout = done.stdout
    self.assertEqual(done.returncode, 0, "demo failed:\n%s\n%s" %
                     (stdout[-5000:], done.stderr[-5000:]))
    self.assertIn("[demo] Demo finished OK", stdout)
    self.assertIn("on a local cluster", stdout)
    self.assertRegex(stdout, r"cluster job finished in \d+ s with exit code 0")
    self.assertRegex(stdout, r"variables equal those of the final checkpoint "
                     r"model\.ckpt-3\d\d: True")
    self.assertIn("embedding partitions spread over 2 ps task(s).", stdout)
    placements = re.findall(r"embeddings/part_\d -> (\S+)", stdout)
    self.assertCountEqual(placements, ["/job:ps/task:0", "/job:ps/task:1"])
    for task in ("chief:0", "worker:0", "worker:1", "ps:0", "ps:1",
                 "evaluator:0"):
      self.assertIn("[%s] " % task, stdout)
    for task in ("ps-0", "ps-1", "chief-0", "evaluator-0"):
      self.assertTrue(os.path.isfile(
          os.path.join(output_dir, "logs", task + ".log")), task)


if __name__ == "__main__":
  absltest.main()
