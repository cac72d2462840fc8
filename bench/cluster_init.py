"""Initializing a partitioned module on a local 2-ps cluster: hub_tf1 vs original.

  python3 bench/cluster_init.py [--quick] [--reps N] [--results FILE]

Rules of this file:
* The driver (the default role) needs only the standard library and writes
  nothing but the --results file (default: print only) and temporary logs
  under the system temp directory.  Every measurement runs in fresh
  processes: per repetition and implementation, two ps tasks (`--role ps`,
  a `tf.distribute.Server` each) and one graph builder (`--role chief`, job
  "worker" task 0, which also runs a server: the session's master).
* "original" is tensorflow_hub 0.15 in .venv/ref; "hub_tf1" is this
  repository on .venv/legacy (PYTHONPATH=repository root).  The ps tasks run
  the same interpreter as their graph builder.  Repetitions interleave the
  implementations in a rotating order; cells are medians (min-max).
* Only `session.run` of the global-variable and table initializers is
  timed (after an untimed run of one tiny op on each ps task, which opens
  the channels).  Before and after it the driver snapshots every TCP socket of the
  two ps processes (`ss -tinpH`: tcp_info bytes_received / bytes_acked of
  each socket, attributed through the owning pid) and their /proc/<pid>/io
  `rchar` (bytes the process read() from files; gRPC's recvmsg() on sockets
  is not counted there).  The chief reports VmRSS before the run and VmHWM
  (reset through /proc/self/clear_refs right before it).
* A row fails unless every variable part's first and last rows, read back
  from the ps tasks, equal the checkpoint's (`tf.train.load_variable`), and
  unless the partitioned module's parts landed on both ps tasks.
"""

import argparse
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PYTHONS = {
    "original": os.path.join(ROOT, ".venv", "ref", "bin", "python"),
    "hub_tf1": os.path.join(ROOT, ".venv", "legacy", "bin", "python"),
    "hub_tf1_device": os.path.join(ROOT, ".venv", "legacy", "bin", "python"),
}
# hub_tf1_device: hub_tf1 with HUB_TF1_REMOTE_RESTORE=device, what a module
# on a shared file system (gs://, hdfs://, ...) gets by default.
IMPLS = ("original", "hub_tf1", "hub_tf1_device")
MODULE_NAME = "embedding_part"
TIMEOUT_S = 1200  # One repetition of one implementation.
CHECK_ROWS = 8  # Rows compared at each end of every variable part.
MB = 1024.0 * 1024.0

# ----------------------------------------------------------------------------
# Roles that run TensorFlow (in a virtualenv's interpreter).


def _status_mb(field):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


def role_ps(args):
  """Serves ps task --task until killed."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cluster = tf.train.ClusterSpec(json.loads(args.cluster))
  server = tf.distribute.Server(cluster, job_name="ps", task_index=args.task,
                                start=True)
  print("PS_READY %d" % os.getpid(), flush=True)
  server.join()


def _say(tag, payload):
  print("%s %s" % (tag, json.dumps(payload)), flush=True)


def _wait_go():
  line = sys.stdin.readline()
  if line.strip() != "GO":
    raise SystemExit("chief: expected GO, got %r" % line)


def _part_groups(variables, scope):
  """{checkpoint key: [(offset, variable), ...]} of the module's variables."""
  groups = {}
  for v in variables:
    name = v.op.name
    if not name.startswith(scope + "/"):
      continue
    name = name[len(scope) + 1:]
    m = re.match(r"^(.*)/part_(\d+)$", name)
    key, index = (m.group(1), int(m.group(2))) if m else (name, 0)
    groups.setdefault(key, []).append((index, v))
  out = {}
  for key, parts in groups.items():
    parts.sort(key=lambda p: p[0])
    offset, rows = 0, []
    for _, v in parts:
      rows.append((offset, v))
      offset += int(v.shape[0]) if v.shape.rank else 0
    out[key] = rows
  return out


def role_chief(args):
  """Builds the graph, times the initializers, verifies; talks over stdio."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  if args.impl == "original":
    import tensorflow_hub as hub
  else:
    import hub_tf1 as hub
  # pylint: enable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  cluster = tf.train.ClusterSpec(json.loads(args.cluster))
  server = tf.distribute.Server(cluster, job_name="worker", task_index=0,
                                start=True)
  scope = "module"
  graph = tf.Graph()
  with graph.as_default():
    setter = tf.compat.v1.train.replica_device_setter(
        ps_tasks=2, cluster=cluster, worker_device="/job:worker/task:0")
    with tf.compat.v1.device(setter):
      hub.Module(args.module, name=scope)
      init = tf.group(tf.compat.v1.global_variables_initializer(),
                      tf.compat.v1.tables_initializer())
    groups = _part_groups(tf.compat.v1.global_variables(), scope)
    checks = []  # (key, start row, tensor)
    for key, parts in groups.items():
      for offset, v in parts:
        with tf.compat.v1.device(v.device):
          n = int(v.shape[0]) if v.shape.rank else 0
          if n:
            k = min(CHECK_ROWS, n)
            checks.append((key, offset, tf.identity(v[:k])))
            checks.append((key, offset + n - k, tf.identity(v[n - k:])))
          else:
            checks.append((key, None, tf.identity(v)))
    devices = sorted({v.device for v in tf.compat.v1.global_variables()})
    restores = sorted(op.device or "(none)" for op in graph.get_operations()
                      if op.type in ("RestoreV2", "RestoreSlice", "Restore"))
    # Untimed: opens the channels to both ps tasks (their start-up and
    # gRPC's connect back-off are no part of the initialization).
    warm = []
    for task in range(2):
      with tf.compat.v1.device("/job:ps/task:%d" % task):
        warm.append(tf.identity(tf.constant(task), name="warm_%d" % task))
  sess = tf.compat.v1.Session(server.target, graph=graph)
  sess.run(warm)
  _say("READY", {"variable_devices": devices, "restore_op_devices": restores,
                 "pid": os.getpid()})
  _wait_go()
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    peak_reset = True
  except OSError:
    peak_reset = False
  rss_before = _status_mb("VmRSS")
  t0 = time.perf_counter()
  sess.run(init)
  elapsed = time.perf_counter() - t0
  rss_after = _status_mb("VmRSS")
  peak = _status_mb("VmHWM")
  _say("DONE", {"init_s": elapsed, "rss_before_mb": rss_before,
                "rss_after_mb": rss_after, "peak_mb": peak,
                "peak_growth_mb": peak - rss_before,
                "peak_reset": peak_reset})
  _wait_go()
  values = sess.run([c[2] for c in checks])
  sess.close()
  prefix = os.path.join(args.module, "variables", "variables")
  mismatches, compared, full = [], 0, {}
  for (key, start, _), value in zip(checks, values):
    if key not in full:
      full[key] = tf.train.load_variable(prefix, key)
    expected = full[key] if start is None else full[key][start:start +
                                                         value.shape[0]]
    compared += 1
    if expected.shape != value.shape or not np.allclose(expected, value):
      mismatches.append("%s rows %s" % (key, start))
  ps_tasks = sorted({d.split("/task:")[1].split("/")[0] for d in devices
                     if "/job:ps" in d})
  _say("RESULT", {"compared": compared, "mismatches": mismatches,
                  "ps_tasks_used": ps_tasks, "tensorflow": tf.__version__,
                  "hub": getattr(hub, "__version__", "?")})


# ----------------------------------------------------------------------------
# Driver (standard library only).


def _free_ports(n):
  socks, ports = [], []
  for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    ports.append(s.getsockname()[1])
  for s in socks:
    s.close()
  return ports


_INT = re.compile(r"\b(bytes_received|bytes_acked|bytes_sent):(\d+)")
_PID = re.compile(r"pid=(\d+)")


def tcp_snapshot():
  """{(local, peer): (pids, bytes_received, bytes_acked)} of all TCP sockets.

  `ss -tinpH` prints each socket as a line (state, queues, local, peer,
  users:(("name",pid=N,fd=M),...)) followed by an indented tcp_info line;
  bytes_received counts the payload that arrived on the socket, bytes_acked
  the payload it sent that the peer acknowledged.
  """
  out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True,
                       check=True).stdout
  sockets, key, pids = {}, None, ()
  for line in out.splitlines():
    if not line.strip():
      continue
    if not line[0].isspace():
      fields = line.split()
      key = (fields[3], fields[4]) if len(fields) >= 5 else None
      pids = tuple(int(p) for p in _PID.findall(line))
      if key is not None:
        sockets[key] = (pids, 0, 0)
      continue
    if key is None:
      continue
    vals = dict((k, int(v)) for k, v in _INT.findall(line))
    if vals:
      sockets[key] = (pids, vals.get("bytes_received", 0),
                      vals.get("bytes_acked", vals.get("bytes_sent", 0)))
  return sockets


def _proc_rchar(pid):
  try:
    with open("/proc/%d/io" % pid) as f:
      for line in f:
        if line.startswith("rchar:"):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def _proc_rss_mb(pid):
  try:
    with open("/proc/%d/status" % pid) as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  return None


def ps_traffic(before, after, ps_pids):
  """Bytes received / sent over TCP by the ps processes between snapshots."""
  received = sent = 0
  sockets = vanished = 0
  for key, (pids, rx, tx) in after.items():
    if not set(pids) & set(ps_pids):
      continue
    sockets += 1
    _, rx0, tx0 = before.get(key, ((), 0, 0))
    received += rx - rx0
    sent += tx - tx0
  for key, (pids, _, _) in before.items():
    if set(pids) & set(ps_pids) and key not in after:
      vanished += 1  # Its bytes after `before` are lost; reported.
  return {"ps_received_mb": received / MB, "ps_sent_mb": sent / MB,
          "ps_sockets": sockets, "ps_sockets_closed": vanished}


def _env(impl):
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  env["PYTHONDONTWRITEBYTECODE"] = "1"
  env["CUDA_VISIBLE_DEVICES"] = ""
  env.pop("HUB_TF1_REMOTE_RESTORE", None)
  if impl.startswith("hub_tf1"):
    env["PYTHONPATH"] = ROOT
    if impl == "hub_tf1_device":
      env["HUB_TF1_REMOTE_RESTORE"] = "device"
  else:
    env.pop("PYTHONPATH", None)
  return env


class _Chief:
  """The chief subprocess and its line protocol."""

  def __init__(self, proc):
    self.proc = proc

  def expect(self, tag):
    while True:
      line = self.proc.stdout.readline()
      if not line:
        try:
          self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
          pass
        raise RuntimeError("chief exited (code %s) before %s" %
                           (self.proc.poll(), tag))
      if line.startswith(tag + " "):
        return json.loads(line[len(tag) + 1:])

  def go(self):
    self.proc.stdin.write("GO\n")
    self.proc.stdin.flush()


def _tail(path, n=15):
  try:
    with open(path, errors="replace") as f:
      lines = [l.rstrip() for l in f
               if not re.match(r"^\d{4}-\d\d-\d\d .*\] ", l)]
    return "\n".join(lines[-n:])
  except OSError:
    return ""


def run_once(impl, module_dir, logdir, tag):
  """One cluster, one initialization.  Returns a metrics dict."""
  python = PYTHONS[impl]
  if not os.path.exists(python):
    return {"error": "no %s" % os.path.relpath(python, ROOT)}
  ports = _free_ports(3)
  cluster = json.dumps({"ps": ["127.0.0.1:%d" % p for p in ports[:2]],
                        "worker": ["127.0.0.1:%d" % ports[2]]})
  env = _env(impl)
  me = os.path.abspath(__file__)
  procs, logs = [], []
  watchdog = None
  try:
    for task in (0, 1):
      log = os.path.join(logdir, "%s_ps%d.log" % (tag, task))
      logs.append(log)
      with open(log, "w") as f:
        procs.append(subprocess.Popen(
            [python, me, "--role", "ps", "--cluster", cluster, "--task",
             str(task)], env=env, stdout=f, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL))
    ps_pids = [p.pid for p in procs]
    chief_log = os.path.join(logdir, "%s_chief.log" % tag)
    logs.append(chief_log)
    with open(chief_log, "w") as f:
      chief_proc = subprocess.Popen(
          [python, me, "--role", "chief", "--cluster", cluster, "--impl", impl,
           "--module", module_dir], env=env, stdin=subprocess.PIPE,
          stdout=subprocess.PIPE, stderr=f, text=True)
    procs.append(chief_proc)

    def kill_all():
      for p in procs:
        if p.poll() is None:
          p.kill()
    watchdog = threading.Timer(TIMEOUT_S, kill_all)
    watchdog.start()
    chief = _Chief(chief_proc)
    ready = chief.expect("READY")
    before = tcp_snapshot()
    rchar0 = [_proc_rchar(p) for p in ps_pids]
    chief.go()
    done = chief.expect("DONE")
    after = tcp_snapshot()
    rchar1 = [_proc_rchar(p) for p in ps_pids]
    ps_rss = [_proc_rss_mb(p) for p in ps_pids]
    chief.go()
    result = chief.expect("RESULT")
    chief_proc.wait(timeout=600)
    metrics = dict(done)
    metrics.update(ps_traffic(before, after, ps_pids))
    if None not in rchar0 + rchar1:
      metrics["ps_file_read_mb"] = (sum(rchar1) - sum(rchar0)) / MB
    if None not in ps_rss:
      metrics["ps_rss_mb"] = sum(ps_rss)
    metrics.update(ready)
    metrics.update(result)
    if result["mismatches"]:
      metrics["error"] = "values differ from the checkpoint: %s" % (
          ", ".join(result["mismatches"][:4]))
    elif len(result["ps_tasks_used"]) < 2:
      metrics["error"] = "variables on ps tasks %s only" % (
          result["ps_tasks_used"],)
    return metrics
  except Exception as e:  # pylint: disable=broad-except
    return {"error": "%s: %s" % (type(e).__name__, e),
            "log_tail": _tail(logs[-1]) if logs else ""}
  finally:
    if watchdog is not None:
      watchdog.cancel()
    for p in procs:
      if p.poll() is None:
        p.terminate()
    for p in procs:
      try:
        p.wait(timeout=20)
      except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _warm_page_cache(module_dir):
  """Reads the module's files once so that no repetition pays the disk."""
  total = 0
  for dirpath, _, files in os.walk(module_dir):
    for name in files:
      with open(os.path.join(dirpath, name), "rb") as f:
        while True:
          chunk = f.read(16 << 20)
          if not chunk:
            break
          total += len(chunk)
  return total


def _loadavg():
  with open("/proc/loadavg") as f:
    return " ".join(f.read().split()[:3])


def _cell(values, fmt):
  values = [v for v in values if v is not None]
  if not values:
    return "n/a"
  med = statistics.median(values)
  if len(values) == 1:
    return fmt % med
  return "%s (%s-%s)" % (fmt % med, fmt % min(values), fmt % max(values))


COLUMNS = (
    ("init s", "init_s", "%.2f"),
    ("MB received by ps", "ps_received_mb", "%.3f"),
    ("MB sent by ps", "ps_sent_mb", "%.3f"),
    ("ps file reads MB (rchar)", "ps_file_read_mb", "%.1f"),
    ("chief RSS before init MB", "rss_before_mb", "%.0f"),
    ("chief peak RSS MB", "peak_mb", "%.0f"),
    ("chief RSS growth during init MB (peak - before)", "peak_growth_mb",
     "%.0f"),
    ("ps RSS after init MB (2 tasks)", "ps_rss_mb", "%.0f"),
)


def _counted(items):
  counts = {}
  for item in items:
    counts[item] = counts.get(item, 0) + 1
  return ", ".join("%d x %s" % (n, k) for k, n in sorted(counts.items()))


def render(results, meta):
  lines = []
  lines.append("| implementation | " + " | ".join(c[0] for c in COLUMNS) +
               " | ok |")
  lines.append("|---" * (len(COLUMNS) + 2) + "|")
  labels = {"original": "original (before: ps-side restore)",
            "hub_tf1": "hub_tf1, local path (chief reads, assigns to ps)",
            "hub_tf1_device": "hub_tf1, shared file system (ps-side "
                              "restore; HUB_TF1_REMOTE_RESTORE=device)"}
  medians = {}
  for impl in IMPLS:
    runs = results[impl]
    good = [r for r in runs if "error" not in r]
    cells = [_cell([r.get(c[1]) for r in good], c[2]) for c in COLUMNS]
    errors = [r["error"] for r in runs if "error" in r]
    ok = "%d/%d" % (len(good), len(runs))
    if errors:
      ok += " (" + errors[0].replace("|", "/").splitlines()[0][:120] + ")"
    lines.append("| %s | %s | %s |" % (labels[impl], " | ".join(cells), ok))
    if good:
      medians[impl] = statistics.median(r["init_s"] for r in good)
  lines.append("")
  for impl in IMPLS[1:]:
    if impl in medians and medians.get("original"):
      lines.append("%s / original init time (ratio of medians): %.2fx" %
                   (impl, medians[impl] / medians["original"]))
    else:
      lines.append("%s / original init time: n/a" % impl)
  lines.append("")
  for impl in IMPLS:
    good = [r for r in results[impl] if "error" not in r]
    if good:
      r = good[0]
      lines.append("- %s: variables on %s; restore ops on %s; "
                   "TF %s, hub %s; %d slices compared" % (
                       impl, ", ".join(r["variable_devices"]),
                       _counted(r["restore_op_devices"]) or "(none)",
                       r["tensorflow"], r["hub"], r["compared"]))
  lines.append("- module: `%s` (%.0f MB of files), %d repetition(s), load "
               "average before/after: %s / %s" % (
                   meta["module"], meta["module_mb"], meta["reps"],
                   meta["load_before"], meta["load_after"]))
  return "\n".join(lines) + "\n"


def driver(args):
  work = os.path.join(BENCH_DIR, "work", "quick" if args.quick else "full")
  module_dir = args.module or os.path.join(work, "modules", MODULE_NAME)
  if not os.path.exists(os.path.join(module_dir, "saved_model.pb")):
    sys.exit("cluster_init: %s is missing; generate it with\n"
             "  bash bench/run.sh %s--only init_emb_part --reps 1\n"
             "(bench/generate.py with the original, as bench/run.py does)" %
             (module_dir, "--quick " if args.quick else ""))
  module_mb = _warm_page_cache(module_dir) / MB
  reps = args.reps
  started = datetime.datetime.now(datetime.timezone.utc)
  load_before = _loadavg()
  results = {impl: [] for impl in IMPLS}
  logdir = tempfile.mkdtemp(prefix="cluster_init_")
  for rep in range(reps):
    order = IMPLS if rep % 2 == 0 else tuple(reversed(IMPLS))
    for impl in order:
      m = run_once(impl, module_dir, logdir, "%s_%d" % (impl, rep))
      m["load"] = _loadavg()
      results[impl].append(m)
      if "error" in m:
        print("rep %d %s: ERROR %s\n%s" % (rep, impl, m["error"],
                                           m.get("log_tail", "")), flush=True)
      else:
        print("rep %d %s: init %.2f s, ps received %.3f MB, sent %.3f MB, "
              "ps file reads %.1f MB, chief peak growth %.0f MB (load %s)" % (
                  rep, impl, m["init_s"], m["ps_received_mb"],
                  m["ps_sent_mb"], m.get("ps_file_read_mb", float("nan")),
                  m["peak_growth_mb"], m["load"]), flush=True)
  meta = {"module": os.path.relpath(module_dir, ROOT), "module_mb": module_mb,
          "reps": reps, "load_before": load_before,
          "load_after": _loadavg()}
  table = render(results, meta)
  header = [
      "# Cluster initialization: %s" % meta["module"], "",
      "- command: `python3 bench/cluster_init.py %s`" % " ".join(sys.argv[1:]),
      "- date: %s; host: %s, %d cores, Python %s (driver)" % (
          started.strftime("%Y-%m-%d %H:%M UTC"), platform.node(),
          os.cpu_count() or 0, platform.python_version()),
      "- logs: %s" % logdir, "", "",
  ]
  text = "\n".join(header) + table
  print()
  print(text)
  if args.results:
    tmp = args.results + ".tmp"
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, args.results)
  if args.raw:
    with open(args.raw, "w") as f:
      json.dump(results, f, indent=1)
  return 0 if all("error" not in r for rs in results.values()
                  for r in rs) else 1


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true",
                      help="the small module of bench/work/quick")
  parser.add_argument("--reps", type=int, default=3,
                      help="repetitions per implementation (default 3)")
  parser.add_argument("--results", default="",
                      help="markdown output (default: print only)")
  parser.add_argument("--raw", default="",
                      help="per-repetition JSON output (default: none)")
  parser.add_argument("--module", default="",
                      help="module directory (default bench/work/"
                      "{full,quick}/modules/embedding_part)")
  parser.add_argument("--role", choices=["driver", "ps", "chief"],
                      default="driver", help=argparse.SUPPRESS)
  parser.add_argument("--cluster", default="", help=argparse.SUPPRESS)
  parser.add_argument("--task", type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument("--impl", choices=IMPLS, default="hub_tf1",
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.role == "ps":
    role_ps(args)
    return 0
  if args.role == "chief":
    role_chief(args)
    return 0
  return driver(args)


if __name__ == "__main__":
  sys.exit(main())
