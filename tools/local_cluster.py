"""A local TensorFlow parameter-server cluster, one OS process per task.

`LocalCluster` starts the same program once per task (1 chief, N workers, M
parameter servers and optionally 1 evaluator) on free ports of 127.0.0.1, each
with its own `TF_CONFIG`; TensorFlow's distributed runtime does the rest (an
Estimator program calls `tf.estimator.train_and_evaluate`, which starts the
task's `tf.distribute.Server` and, on ps tasks, joins it).  The launcher
streams every task's output line by line with a `[type:index]` prefix, can
kill and restart a task (fault tests), and stops every process it started on
exit, on Ctrl-C, on SIGTERM and on timeout.

The job is done when the chief, the workers and the evaluator have exited;
parameter servers never exit by themselves and are stopped then.  The job
failed when any task exited non-zero (other than one killed on purpose).

A developer and test tool, not part of the library: the demo
(examples/estimator_demo) and the cluster tests use it, and
examples/text_classification/README.md runs its job with it.  It imports only
the standard library and absl, never TensorFlow or hub_tf1.

Command line, from the repository root (or with it on PYTHONPATH):

  python -m tools.local_cluster [--workers 2] [--ps 2] [--no_evaluator]
      [--timeout SECS] [--log_dir DIR] [--echo_filter REGEX]
      -- PROGRAM [ARGS...]

e.g. `python -m tools.local_cluster --workers 1 -- python job.py` runs
`python job.py` as chief:0, worker:0, ps:0, ps:1 and evaluator:0.  Exits 0 on
success, 1 when a task failed, 2 on timeout, 130 on Ctrl-C.

From Python: `LocalCluster` (start, wait, kill/restart a task, read its
output lines) and `run_cluster` (start, wait, stop).
"""

import argparse
import collections
import ctypes
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, IO, Iterable, List, Optional, Sequence, Tuple

from absl import logging

HOST = "127.0.0.1"
CHIEF, WORKER, PS, EVALUATOR = "chief", "worker", "ps", "evaluator"

EXIT_OK, EXIT_TASK_FAILED, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# Seconds a task gets between SIGTERM and SIGKILL when the cluster stops.
_TERMINATE_GRACE_SECS = 5.0
_POLL_SECS = 0.2
_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True, order=True)
class Task:
  """One task of the cluster, e.g. `Task("worker", 1)`."""
  type: str
  index: int = 0

  def __str__(self) -> str:
    return "%s:%d" % (self.type, self.index)

  @classmethod
  def parse(cls, text: str) -> "Task":
    """`"worker:1"` or `"chief"` -> Task."""
    task_type, _, index = text.partition(":")
    return cls(task_type, int(index or 0))


def free_ports(count: int, host: str = HOST) -> List[int]:
  """`count` distinct TCP ports that were free on `host` a moment ago.

  All sockets are held open together so the ports differ; another process
  could still take one before the task binds it (unlikely on a test machine).
  """
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind((host, 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def make_cluster_spec(num_workers: int, num_ps: int,
                      host: str = HOST) -> Dict[str, List[str]]:
  """A cluster dict (chief, worker, ps jobs) on free ports of `host`."""
  ports = iter(free_ports(1 + num_workers + num_ps, host))
  spec = {CHIEF: ["%s:%d" % (host, next(ports))]}
  if num_workers:
    spec[WORKER] = ["%s:%d" % (host, next(ports)) for _ in range(num_workers)]
  if num_ps:
    spec[PS] = ["%s:%d" % (host, next(ports)) for _ in range(num_ps)]
  return spec


def tf_config(cluster_spec: Dict[str, List[str]], task: Task) -> str:
  """The TF_CONFIG value of `task` (the evaluator is not in the cluster)."""
  return json.dumps({
      "cluster": cluster_spec,
      "task": {"type": task.type, "index": task.index},
      "environment": "cloud",
  })


def _die_with_parent() -> None:
  """Runs in the child before exec: SIGTERM it when the launcher dies.

  Linux only; elsewhere the launcher's own cleanup is all there is.
  """
  try:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
  except OSError:
    pass


@dataclasses.dataclass
class _Run:
  """One incarnation (start) of a task's process."""
  process: subprocess.Popen
  incarnation: int
  reader: threading.Thread
  killed: bool = False  # Killed on purpose by kill_task().


class LocalCluster:
  """Starts, watches and stops the processes of a local cluster.

  Spawn and restart tasks from one long-lived thread (normally the main
  thread): on Linux a task receives SIGTERM when the thread that started it
  ends, so that no task outlives a crashed launcher.

  Use as a context manager, or call `stop()`:

    with LocalCluster([sys.executable, "-m", "my.trainer"], num_workers=2,
                      num_ps=2) as cluster:
      cluster.start()
      exit_code = cluster.wait(timeout=600)
  """

  def __init__(self,
               command: Sequence[str],
               num_workers: int = 2,
               num_ps: int = 2,
               evaluator: bool = True,
               env: Optional[Dict[str, str]] = None,
               cwd: Optional[str] = None,
               output: Optional[IO[str]] = None,
               echo_filter: Optional[str] = None,
               log_dir: Optional[str] = None,
               host: str = HOST,
               task_env: Optional[Dict[str, Dict[str, str]]] = None,
               task_users: Optional[Dict[str, Tuple[int, int]]] = None):
    """Prepares the cluster (nothing starts before `start()`).

    Args:
      command: the program every task runs (argv list).
      num_workers: workers besides the chief.
      num_ps: parameter-server tasks.
      evaluator: whether to run an evaluator task.
      env: environment for the tasks (default: this process's), to which
        TF_CONFIG and PYTHONUNBUFFERED=1 are added.
      cwd: working directory of the tasks.
      output: where prefixed task output is echoed (default sys.stdout); all
        lines are also kept in memory (`lines()`) and, with `log_dir`, in
        `<log_dir>/<type>-<index>.log`.
      echo_filter: regular expression; when set, only matching lines are
        echoed (all are still kept and logged to files).
      log_dir: directory for per-task log files.
      host: address the tasks listen on.
      task_env: task type ("ps", "worker", ...) -> variables added to that
        type's environment (e.g. a cache directory of its own).
      task_users: task type -> (uid, gid) that type's processes run as
        (needs root), with no supplementary groups; e.g. parameter servers
        that must not read files the chief can.

    Raises:
      ValueError: no command, or an unknown task type in task_env/task_users.
    """
    if not command:
      raise ValueError("LocalCluster needs a command to run.")
    self._command = list(command)
    self._env = dict(os.environ if env is None else env)
    self._cwd = cwd
    self._output = output if output is not None else sys.stdout
    self._echo_re = re.compile(echo_filter) if echo_filter else None
    self._log_dir = log_dir
    self._task_env = dict(task_env or {})
    self._task_users = dict(task_users or {})
    unknown = sorted((set(self._task_env) | set(self._task_users)) -
                     {CHIEF, WORKER, PS, EVALUATOR})
    if unknown:
      raise ValueError("Unknown task types %s (known: %s)." % (
          unknown, ", ".join((CHIEF, WORKER, PS, EVALUATOR))))
    self.cluster_spec = make_cluster_spec(num_workers, num_ps, host)
    self.tasks = ([Task(CHIEF, 0)] +
                  [Task(WORKER, i) for i in range(num_workers)] +
                  [Task(PS, i) for i in range(num_ps)] +
                  ([Task(EVALUATOR, 0)] if evaluator else []))
    self._runs: Dict[Task, List[_Run]] = collections.defaultdict(list)
    self._lines: Dict[Task, List[str]] = collections.defaultdict(list)
    self._lock = threading.Lock()
    self._stopped = False
    if log_dir:
      os.makedirs(log_dir, exist_ok=True)

  # ------------------------------------------------------------------ start

  def start(self) -> None:
    """Starts every task: parameter servers first, then the others."""
    for task in sorted(self.tasks, key=lambda t: (t.type != PS, t)):
      self.start_task(task)

  def start_task(self, task: Task) -> None:
    """Starts (or restarts, after `kill_task`) the process of `task`."""
    if task not in self.tasks:
      raise ValueError("No task %s in this cluster (%s)." %
                       (task, ", ".join(map(str, self.tasks))))
    with self._lock:
      if self._stopped:
        raise RuntimeError("The cluster was stopped.")
      runs = self._runs[task]
      if runs and runs[-1].process.poll() is None:
        raise RuntimeError("Task %s is still running." % task)
      env = dict(self._env)
      env["TF_CONFIG"] = tf_config(self.cluster_spec, task)
      env["PYTHONUNBUFFERED"] = "1"
      env.update(self._task_env.get(task.type, {}))
      user = {}
      if task.type in self._task_users:
        uid, gid = self._task_users[task.type]
        user = dict(user=uid, group=gid, extra_groups=[])
      process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
          self._command, env=env, cwd=self._cwd, **user,
          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
          stderr=subprocess.STDOUT, start_new_session=True,
          preexec_fn=_die_with_parent if sys.platform.startswith("linux")
          else None)
      incarnation = len(runs) + 1
      reader = threading.Thread(
          target=self._pump, args=(task, incarnation, process.stdout),
          name="log-%s-%d" % (task, incarnation), daemon=True)
      runs.append(_Run(process, incarnation, reader))
      reader.start()
    logging.info("Started task %s (pid %d, incarnation %d).", task,
                 process.pid, incarnation)

  def _pump(self, task: Task, incarnation: int, stream: IO[bytes]) -> None:
    """Copies one process's output to the echo stream, memory and log file."""
    prefix = "[%s]" % task if incarnation == 1 else "[%s#%d]" % (task,
                                                                  incarnation)
    log_file = None
    if self._log_dir:
      log_file = open(  # Plain local log files, not module data.
          os.path.join(self._log_dir, "%s-%d.log" % (task.type, task.index)),
          "a", encoding="utf-8")
    try:
      for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        with self._lock:
          self._lines[task].append(line)
          if log_file:
            log_file.write(line + "\n")
            log_file.flush()
          if self._echo_re is None or self._echo_re.search(line):
            try:
              self._output.write("%s %s\n" % (prefix, line))
              self._output.flush()
            except ValueError:  # Output closed (interpreter shutting down).
              pass
    finally:
      stream.close()
      if log_file:
        log_file.close()

  # ------------------------------------------------------------ inspection

  def lines(self, task: Task) -> List[str]:
    """Every output line of `task` so far (all incarnations, in order)."""
    with self._lock:
      return list(self._lines[task])

  def pid(self, task: Task) -> Optional[int]:
    runs = self._runs.get(task)
    return runs[-1].process.pid if runs else None

  def returncode(self, task: Task) -> Optional[int]:
    """Exit code of the task's latest process; None while it runs."""
    runs = self._runs.get(task)
    return runs[-1].process.poll() if runs else None

  def is_running(self, task: Task) -> bool:
    runs = self._runs.get(task)
    return bool(runs) and runs[-1].process.poll() is None

  def incarnations(self, task: Task) -> int:
    return len(self._runs.get(task, ()))

  def failed_tasks(self) -> List[Task]:
    """Tasks whose latest process exited non-zero without a kill_task()."""
    failed = []
    for task in self.tasks:
      runs = self._runs.get(task)
      if not runs:
        continue
      run = runs[-1]
      code = run.process.poll()
      if code not in (None, 0) and not run.killed and not self._stopped:
        failed.append(task)
    return failed

  # ----------------------------------------------------------- fault tools

  def kill_task(self, task: Task, sig: int = signal.SIGKILL,
                timeout: float = 30.0) -> int:
    """Sends `sig` to the task's process and waits for it to exit.

    The task does not count as failed; start it again with `start_task` (or
    `restart_task`).

    Returns:
      The process's exit code.
    """
    runs = self._runs.get(task)
    if not runs or runs[-1].process.poll() is not None:
      raise RuntimeError("Task %s is not running." % task)
    run = runs[-1]
    run.killed = True
    _signal_group(run.process, sig)
    code = run.process.wait(timeout)
    run.reader.join(timeout)
    logging.info("Killed task %s (pid %d) with signal %d: exit code %s.",
                 task, run.process.pid, sig, code)
    return code

  def restart_task(self, task: Task, sig: int = signal.SIGKILL) -> None:
    """Kills `task` if it runs, then starts it again with the same TF_CONFIG."""
    if self.is_running(task):
      self.kill_task(task, sig)
    self.start_task(task)

  # ------------------------------------------------------------ completion

  def _job_done(self) -> bool:
    """Whether every non-ps task's latest process exited."""
    for task in self.tasks:
      if task.type == PS:
        continue
      runs = self._runs.get(task)
      if not runs or runs[-1].process.poll() is None:
        return False
    return True

  def wait(self, timeout: Optional[float] = None) -> int:
    """Waits for the job, then stops the remaining tasks (the ps).

    Returns:
      EXIT_OK when chief, workers and evaluator all exited 0 (the latest
      process of each); EXIT_TASK_FAILED as soon as a task fails (all others
      are stopped then); EXIT_TIMEOUT after `timeout` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
      while True:
        failed = self.failed_tasks()
        if failed:
          logging.error("Task(s) failed: %s; stopping the cluster.",
                        ", ".join("%s (exit %s)" % (t, self.returncode(t))
                                  for t in failed))
          return EXIT_TASK_FAILED
        if self._job_done():
          return EXIT_OK
        if deadline is not None and time.monotonic() > deadline:
          logging.error("Cluster job timed out after %.0f s; stopping it.",
                        timeout)
          return EXIT_TIMEOUT
        time.sleep(_POLL_SECS)
    finally:
      self.stop()

  def wait_for_line(self, task: Task, pattern: str,
                    timeout: float, start: int = 0) -> Optional[re.Match]:
    """Waits until a line of `task` (from line index `start`) matches.

    Returns:
      The match, or None on timeout or when the task's process exited
      without printing such a line.
    """
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    seen = start
    while time.monotonic() < deadline:
      lines = self.lines(task)
      for line in lines[seen:]:
        match = regex.search(line)
        if match:
          return match
      seen = len(lines)
      if not self.is_running(task) and len(self.lines(task)) == seen:
        return None
      time.sleep(_POLL_SECS)
    return None

  def stop(self) -> None:
    """Stops every process this cluster started (SIGTERM, then SIGKILL)."""
    with self._lock:
      self._stopped = True
      runs = [run for task_runs in self._runs.values() for run in task_runs]
    live = [run for run in runs if run.process.poll() is None]
    for run in live:
      _signal_group(run.process, signal.SIGTERM)
    deadline = time.monotonic() + _TERMINATE_GRACE_SECS
    for run in live:
      try:
        run.process.wait(max(0.0, deadline - time.monotonic()))
      except subprocess.TimeoutExpired:
        _signal_group(run.process, signal.SIGKILL)
        run.process.wait()
    for run in runs:
      run.reader.join(5.0)

  def __enter__(self) -> "LocalCluster":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
  """Signals the task's process group (the task and anything it spawned)."""
  try:
    os.killpg(process.pid, sig)
  except (ProcessLookupError, PermissionError):
    try:
      process.send_signal(sig)
    except ProcessLookupError:
      pass


def run_cluster(command: Sequence[str],
                num_workers: int = 2,
                num_ps: int = 2,
                evaluator: bool = True,
                timeout: Optional[float] = None,
                **kwargs) -> int:
  """Starts a LocalCluster running `command`, waits for it, stops it.

  Ctrl-C (KeyboardInterrupt) stops every task and returns EXIT_INTERRUPTED.

  Returns:
    The exit code of `LocalCluster.wait`.
  """
  with LocalCluster(command, num_workers=num_workers, num_ps=num_ps,
                    evaluator=evaluator, **kwargs) as cluster:
    try:
      cluster.start()
      return cluster.wait(timeout)
    except KeyboardInterrupt:
      logging.warning("Interrupted; stopping the cluster.")
      return EXIT_INTERRUPTED


def _sigterm_to_exit(signum, frame) -> None:
  del frame
  raise SystemExit(128 + signum)


def main(argv: Optional[Iterable[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m tools.local_cluster",
      description="Runs PROGRAM as every task of a local TensorFlow "
      "parameter-server cluster (TF_CONFIG set per task).")
  parser.add_argument("--workers", type=int, default=2,
                      help="number of workers besides the chief")
  parser.add_argument("--ps", type=int, default=2,
                      help="number of parameter servers")
  parser.add_argument("--no_evaluator", action="store_true",
                      help="do not start an evaluator task")
  parser.add_argument("--timeout", type=float, default=None,
                      help="stop everything after this many seconds")
  parser.add_argument("--log_dir", default=None,
                      help="also write <type>-<index>.log files here")
  parser.add_argument("--echo_filter", default=None,
                      help="only echo output lines matching this regex")
  parser.add_argument("program", nargs=argparse.REMAINDER,
                      help="-- PROGRAM [ARGS...]")
  args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
  program = args.program[1:] if args.program[:1] == ["--"] else args.program
  if not program:
    parser.error("missing the program to run (after --)")
  logging.set_verbosity(logging.INFO)
  signal.signal(signal.SIGTERM, _sigterm_to_exit)
  code = run_cluster(program, num_workers=args.workers, num_ps=args.ps,
                     evaluator=not args.no_evaluator, timeout=args.timeout,
                     log_dir=args.log_dir, echo_filter=args.echo_filter)
  logging.info("Cluster job finished with exit code %d.", code)
  return code


if __name__ == "__main__":
  sys.exit(main())
