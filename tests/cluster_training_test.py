"""Parameter-server training of the demo model on a real local cluster.

Every test starts 1 chief + 2 workers + 2 ps + 1 evaluator as separate
processes (tools.local_cluster running examples.estimator_demo.trainer, i.e.
`tf.estimator.train_and_evaluate` with TF_CONFIG) and checks:

* the normal run: the module's variables are placed on the ps tasks and its
  partitioned embedding is spread over both; the evaluator's
  LatestModuleExporter writes complete modules; the newest export equals the
  final checkpoint;
* a worker killed (SIGKILL) mid-training and restarted rejoins and trains,
  and the job finishes;
* the chief killed mid-training and restarted resumes from its last
  checkpoint (the global step it starts from is at least that checkpoint's),
  and the job finishes with complete exports only.

The tiny model trains with a short pause per step so that a job lasts tens of
seconds; every wait is bounded and all processes are stopped on the way out.
"""

import os
import re
import sys
import tempfile

from absl import logging
from absl.testing import absltest
import numpy as np
import tensorflow as tf

from estimator_integration import exporter as exporter_lib
from examples.estimator_demo import model as demo_model
import hub_tf1 as hub
from tools import local_cluster as cluster

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bounds that only guard against hangs; no assertion is made on durations.
_JOB_TIMEOUT_SECS = 420
_EVENT_TIMEOUT_SECS = 240
_ECHO = (r"HUB_DEMO_EVENT|Saving checkpoints for|Exported \d+ module|"
         r"Exiting evaluation|Restoring parameters|Traceback|Error")
_CHIEF = cluster.Task("chief", 0)
_WORKER1 = cluster.Task("worker", 1)
_EVALUATOR = cluster.Task("evaluator", 0)


def _step_of(checkpoint_path: str) -> int:
  return int(re.search(r"-(\d+)$", checkpoint_path).group(1))


class ClusterTrainingTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    cls.module_dir = demo_model.make_text_module(
        os.path.join(cls.root, "module"))
    cls.variable_names = sorted(
        demo_model.module_variable_values(cls.module_dir))

  def _cluster(self, name: str, max_steps: int, step_delay_secs: float,
               save_checkpoints_steps: int):
    """A LocalCluster running the demo trainer; returns (cluster, model_dir)."""
    model_dir = os.path.join(self.root, name, "model")
    log_dir = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR",
                       os.path.join(self.root, name)), name + "-logs")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [_REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                   if p])
    env["CUDA_VISIBLE_DEVICES"] = ""
    command = [
        sys.executable, "-m", "examples.estimator_demo.trainer",
        "--module_path=" + self.module_dir, "--model_dir=" + model_dir,
        "--max_steps=%d" % max_steps,
        "--save_checkpoints_steps=%d" % save_checkpoints_steps,
        "--step_delay_secs=%g" % step_delay_secs,
        "--eval_throttle_secs=1", "--progress_every_n_steps=5",
        "--worker_stop_margin=20", "--exports_to_keep=3",
    ]
    local = cluster.LocalCluster(command, num_workers=2, num_ps=2,
                                 evaluator=True, env=env, output=sys.stderr,
                                 echo_filter=_ECHO, log_dir=log_dir)
    self.addCleanup(local.stop)
    logging.info("%s: cluster %s, logs in %s", name, local.cluster_spec,
                 log_dir)
    return local, model_dir

  def _wait_ok(self, local):
    code = local.wait(_JOB_TIMEOUT_SECS)
    self.assertEqual(code, cluster.EXIT_OK,
                     "job failed (exit %d); failed tasks: %s" %
                     (code, local.failed_tasks()))

  def _wait_event(self, local, task, pattern, start=0):
    match = local.wait_for_line(task, pattern, _EVENT_TIMEOUT_SECS, start)
    self.assertIsNotNone(match, "%s never logged %r" % (task, pattern))
    return match

  def _check_exports(self, model_dir: str) -> str:
    """All exports complete, nothing else in the export dir; returns newest."""
    base = demo_model.export_base(model_dir)
    entries = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(base))
    self.assertNotEmpty(entries)
    for name in entries:
      self.assertTrue(exporter_lib.is_export_dir_name(name),
                      "unexpected entry %s in %s" % (name, base))
      module_dir = os.path.join(base, name, demo_model.EXPORT_NAME)
      self.assertTrue(tf.io.gfile.exists(
          os.path.join(module_dir, "tfhub_module.pb")), module_dir)
      hub.load_module_spec(module_dir)  # Parses: not half written.
    return os.path.join(base, entries[-1], demo_model.EXPORT_NAME)

  def _check_newest_export_equals_final_checkpoint(self, model_dir: str,
                                                   max_steps: int):
    newest = self._check_exports(model_dir)
    final = tf.train.latest_checkpoint(model_dir)
    self.assertGreaterEqual(_step_of(final), max_steps)
    exported = demo_model.module_variable_values(newest)
    self.assertEqual(sorted(exported), self.variable_names)
    in_checkpoint = demo_model.checkpoint_module_values(
        final, demo_model.module_scope(), self.variable_names)
    for name in self.variable_names:
      np.testing.assert_array_equal(exported[name], in_checkpoint[name],
                                    err_msg=name)

  def test_parameter_server_training_and_export(self):
    max_steps = 300
    local, model_dir = self._cluster("normal", max_steps, 0.05, 50)
    local.start()
    self._wait_ok(local)

    # Placement, from the device strings of the chief's training graph.
    devices = demo_model.module_variable_devices(model_dir,
                                                 demo_model.module_scope())
    parts = {n: d for n, d in devices.items()
             if re.fullmatch(r"embeddings/part_\d+", n)}
    self.assertLen(parts, 2, devices)
    for name, device in devices.items():
      self.assertRegex(device, r"^/job:ps/task:[01]", name)
    self.assertCountEqual(
        {re.match(r"^/job:ps/task:(\d)", d).group(1) for d in parts.values()},
        ["0", "1"])

    for task in local.tasks:
      if task.type != "ps":
        self._wait_event(local, task, r"HUB_DEMO_EVENT .* event=done")
    self._wait_event(local, _EVALUATOR, r"Exiting evaluation")
    self._check_newest_export_equals_final_checkpoint(model_dir, max_steps)

  def test_worker_killed_and_restarted_rejoins(self):
    max_steps = 1500
    local, model_dir = self._cluster("worker_fault", max_steps, 0.05, 100)
    local.start()
    self._wait_event(local, _WORKER1, r"event=step global_step=(\d+)")
    local.kill_task(_WORKER1)
    restart_line = len(local.lines(_WORKER1))
    local.start_task(_WORKER1)
    # The new process joins the running job and trains.
    self._wait_event(local, _WORKER1, r"event=session", restart_line)
    self._wait_event(local, _WORKER1, r"event=step", restart_line)
    self._wait_ok(local)
    ended = [l for l in local.lines(_WORKER1)[restart_line:]
             if "event=end" in l]
    self.assertLen(ended, 1)
    self.assertGreater(int(re.search(r"local_steps=(\d+)", ended[0]).group(1)),
                       0)
    self._check_newest_export_equals_final_checkpoint(model_dir, max_steps)

  def test_chief_killed_and_restarted_resumes_from_checkpoint(self):
    max_steps = 600
    local, model_dir = self._cluster("chief_fault", max_steps, 0.05, 50)
    local.start()
    self._wait_event(local, _CHIEF, r"Saving checkpoints for (1\d\d|[2-9]\d\d)")
    local.kill_task(_CHIEF)
    # The chief is gone: its last checkpoint cannot change any more.
    last_checkpoint = tf.train.latest_checkpoint(model_dir)
    last_step = _step_of(last_checkpoint)
    self.assertGreater(last_step, 0)
    restart_line = len(local.lines(_CHIEF))
    local.start_task(_CHIEF)
    self._wait_event(local, _CHIEF, r"Restoring parameters from .*model\.ckpt-" +
                     str(last_step) + r"\b", restart_line)
    resumed = self._wait_event(local, _CHIEF,
                               r"event=session global_step=(\d+)",
                               restart_line)
    self.assertGreaterEqual(int(resumed.group(1)), last_step)
    self._wait_ok(local)
    self._check_newest_export_equals_final_checkpoint(model_dir, max_steps)


if __name__ == "__main__":
  absltest.main()
