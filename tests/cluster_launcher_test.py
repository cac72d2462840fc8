"""Tests of the local cluster launcher (tools/local_cluster.py).

The tasks here are tiny Python programs (no TensorFlow), so these tests check
the launcher itself: TF_CONFIG per task, log prefixes, completion and failure
rules, timeouts, kill/restart, and that no process outlives the launcher.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from absl.testing import absltest

from tools import local_cluster as cluster

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Upper bound for anything that should take a few seconds; only guards
# against hangs (never asserted on).
_GUARD_SECS = 120

# Task program: prints its TF_CONFIG; ps tasks then block like a real ps;
# other behaviour is chosen per task through environment variables.
_PROGRAM = textwrap.dedent("""
    import json, os, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    task = "%s:%d" % (config["task"]["type"], config["task"]["index"])
    print("TF_CONFIG " + json.dumps(config), flush=True)
    if task == os.environ.get("FAIL_TASK"):
      print("failing on purpose", flush=True)
      sys.exit(3)
    go_file = os.environ.get("GO_FILE")
    if config["task"]["type"] == "ps" or os.environ.get("SLEEP_ALL"):
      while True:
        time.sleep(1)
    while go_file and not os.path.exists(go_file):
      time.sleep(0.1)
    print("bye from " + task, flush=True)
""")


def _alive(pid: int) -> bool:
  """Whether `pid` is a live (not zombie) process."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except FileNotFoundError:
    return False


class LocalClusterTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    self.env = dict(os.environ)

  def _cluster(self, **kwargs):
    kwargs.setdefault("output", io.StringIO())
    local = cluster.LocalCluster([sys.executable, "-c", _PROGRAM],
                                 env=self.env, **kwargs)
    self.addCleanup(local.stop)
    return local

  def test_tf_config_and_prefixed_output(self):
    output = io.StringIO()
    local = self._cluster(num_workers=2, num_ps=2, output=output,
                          log_dir=os.path.join(self.tmp, "logs"))
    local.start()
    self.assertEqual(local.wait(_GUARD_SECS), cluster.EXIT_OK)
    spec = local.cluster_spec
    self.assertEqual(sorted(spec), ["chief", "ps", "worker"])
    addresses = [a for job in spec.values() for a in job]
    self.assertLen(addresses, 5)
    self.assertLen(set(addresses), 5)
    self.assertTrue(all(a.startswith("127.0.0.1:") for a in addresses))
    self.assertEqual([str(t) for t in local.tasks],
                     ["chief:0", "worker:0", "worker:1", "ps:0", "ps:1",
                      "evaluator:0"])
    for task in local.tasks:
      first = local.lines(task)[0]
      config = json.loads(first[len("TF_CONFIG "):])
      self.assertEqual(config["cluster"], spec)
      self.assertEqual(config["task"], {"type": task.type,
                                        "index": task.index})
      self.assertIn("[%s] TF_CONFIG " % task, output.getvalue())
      with open(os.path.join(self.tmp, "logs",
                             "%s-%d.log" % (task.type, task.index))) as f:
        self.assertEqual(f.read().splitlines(), local.lines(task))
    # The parameter servers never exit by themselves: wait() stopped them.
    for task in local.tasks:
      self.assertFalse(local.is_running(task), task)
    self.assertIn("bye from evaluator:0", output.getvalue())

  def test_echo_filter(self):
    output = io.StringIO()
    local = self._cluster(num_workers=1, num_ps=1, output=output,
                          echo_filter="^bye")
    local.start()
    self.assertEqual(local.wait(_GUARD_SECS), cluster.EXIT_OK)
    echoed = output.getvalue().splitlines()
    self.assertCountEqual(echoed, ["[chief:0] bye from chief:0",
                                   "[worker:0] bye from worker:0",
                                   "[evaluator:0] bye from evaluator:0"])
    # Filtered lines are still recorded.
    self.assertTrue(local.lines(cluster.Task("ps", 0))[0].startswith(
        "TF_CONFIG"))

  def test_failing_task_stops_the_cluster(self):
    self.env["FAIL_TASK"] = "worker:1"
    self.env["SLEEP_ALL"] = "1"  # Everyone else would run forever.
    local = self._cluster(num_workers=2, num_ps=1)
    local.start()
    self.assertEqual(local.wait(_GUARD_SECS), cluster.EXIT_TASK_FAILED)
    self.assertEqual(local.returncode(cluster.Task("worker", 1)), 3)
    for task in local.tasks:
      self.assertFalse(local.is_running(task), task)

  def test_timeout_stops_everything(self):
    self.env["SLEEP_ALL"] = "1"
    local = self._cluster(num_workers=1, num_ps=1, evaluator=False)
    local.start()
    pids = [local.pid(t) for t in local.tasks]
    self.assertEqual(local.wait(timeout=1.0), cluster.EXIT_TIMEOUT)
    self.assertFalse(any(_alive(p) for p in pids))

  def test_kill_and_restart_a_task(self):
    go_file = os.path.join(self.tmp, "go")
    self.env["GO_FILE"] = go_file
    output = io.StringIO()
    local = self._cluster(num_workers=2, num_ps=1, output=output)
    local.start()
    worker = cluster.Task("worker", 1)
    self.assertIsNotNone(local.wait_for_line(worker, "^TF_CONFIG", 60))
    first_pid = local.pid(worker)
    self.assertNotEqual(local.kill_task(worker), 0)
    self.assertFalse(_alive(first_pid))
    self.assertEqual(local.failed_tasks(), [])  # Killed on purpose.
    local.start_task(worker)
    self.assertEqual(local.incarnations(worker), 2)
    self.assertNotEqual(local.pid(worker), first_pid)
    with self.assertRaisesRegex(RuntimeError, "still running"):
      local.start_task(worker)
    self.assertIsNotNone(local.wait_for_line(worker, "^TF_CONFIG", 60,
                                             start=1))
    with open(go_file, "w") as f:
      f.write("go")
    self.assertEqual(local.wait(_GUARD_SECS), cluster.EXIT_OK)
    self.assertIn("[worker:1#2] bye from worker:1", output.getvalue())
    self.assertEqual(
        [line for line in local.lines(worker) if line.startswith("TF_CONFIG")],
        [local.lines(worker)[0]] * 2)  # Same TF_CONFIG both times.

  def test_unknown_task(self):
    local = self._cluster(num_workers=1, num_ps=1)
    with self.assertRaisesRegex(ValueError, "No task worker:5"):
      local.start_task(cluster.Task("worker", 5))
    self.assertEqual(cluster.Task.parse("worker:3"), cluster.Task("worker", 3))
    self.assertEqual(cluster.Task.parse("chief"), cluster.Task("chief", 0))


class CommandLineTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.env = dict(os.environ)
    self.env["PYTHONPATH"] = os.pathsep.join(
        [_REPO] + [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep)
                   if p])

  def _command(self, *flags):
    return ([sys.executable, "-m", "tools.local_cluster"] +
            list(flags) + ["--", sys.executable, "-c", _PROGRAM])

  def test_success_and_failure_exit_codes(self):
    done = subprocess.run(self._command("--workers", "1", "--ps", "1"),
                          env=self.env, capture_output=True, text=True,
                          timeout=_GUARD_SECS, check=False)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("[worker:0] bye from worker:0", done.stdout)
    self.assertIn("[ps:0] TF_CONFIG", done.stdout)

    self.env["FAIL_TASK"] = "evaluator:0"
    failed = subprocess.run(self._command("--workers", "1", "--ps", "1"),
                            env=self.env, capture_output=True, text=True,
                            timeout=_GUARD_SECS, check=False)
    self.assertEqual(failed.returncode, 1, failed.stderr[-3000:])
    self.assertIn("[evaluator:0] failing on purpose", failed.stdout)

  def test_missing_program(self):
    done = subprocess.run(
        [sys.executable, "-m", "tools.local_cluster", "--ps", "1"],
        env=self.env, capture_output=True, text=True, timeout=_GUARD_SECS,
        check=False)
    self.assertNotEqual(done.returncode, 0)
    self.assertIn("missing the program", done.stderr)

  def _started_pids(self, log_path, count):
    """Pids the launcher logged as started, once `count` are there."""
    deadline = time.monotonic() + _GUARD_SECS
    while time.monotonic() < deadline:
      with open(log_path) as f:
        pids = [int(p) for p in re.findall(r"Started task \S+ \(pid (\d+)",
                                           f.read())]
      if len(pids) >= count:
        return pids
      time.sleep(0.2)
    self.fail("the launcher did not start %d tasks" % count)

  def test_signals_stop_every_task(self):
    self.env["SLEEP_ALL"] = "1"
    # SIGKILL gives the launcher no chance to clean up: the tasks then go
    # because the launcher asked the kernel to SIGTERM them when it dies.
    for sig, want in ((signal.SIGINT, cluster.EXIT_INTERRUPTED),
                      (signal.SIGTERM, 128 + signal.SIGTERM),
                      (signal.SIGKILL, -signal.SIGKILL)):
      log_path = os.path.join(absltest.get_default_test_tmpdir(),
                              "launcher-%d.log" % sig)
      with open(log_path, "w") as log:
        launcher = subprocess.Popen(
            self._command("--workers", "1", "--ps", "1"), env=self.env,
            stdout=subprocess.DEVNULL, stderr=log)
        try:
          pids = self._started_pids(log_path, 4)
          self.assertTrue(all(_alive(p) for p in pids))
          launcher.send_signal(sig)
          self.assertEqual(launcher.wait(_GUARD_SECS), want)
        finally:
          if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
      deadline = time.monotonic() + _GUARD_SECS
      while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
      self.assertFalse([p for p in pids if _alive(p)], sig)


if __name__ == "__main__":
  absltest.main()
