"""Probes behind explanations in bench/README.md and the issues' notes.

Run from the repository root, after `bash bench/run.sh` generated the modules:

  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py gc
  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py grappler
  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py export \
      [--export_module elmo --applications 11 [--run_first]]
  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py construct_gc
  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py paired \
      [--row steady_text|steady_mlp_small|bert_train]

`gc`: growth (mean of calls 11-50 / call 1) of 50 x m(x) on the small MLP,
with Python's collector as the set-up left it, after `gc.collect()`, after
`gc.freeze()` and disabled; also the objects the collector tracks and the time
of one full collection.  `grappler`: the first and second run of the
initializers of the 200-layer MLP, with the session's default config and with
Grappler's meta optimizer disabled.  `export`: where the time of
hub_tf1's `Module.export` of the 1 GB embedding (or `--export_module`,
after `--applications` applications of its signature, the first of them run
once with `--run_first` as the BERT/ELMo rows do) goes, as the bench
row times it (the first export of a fresh process, page cache synced and
dropped before): the whole export; how long until the writer thread has its
first chunk; the writer's time in `write` calls; the building of the
callable that fetches the variables without a copy (its executor) and its
run; then, in the same process, one plain write of the same number of bytes
(the bench's floor).  The parent stops free page reporting for the
probe as the bench does (bench/host_memory.py).  `construct_gc`: the
first `hub.Module(path)` of the 200-layer MLP in a process (the bench's
`load_mlp_deep` row), with the collector as the imports left it, after
`gc.collect()` and disabled; also the time of the writer's ops inside it
and the collector's full collections during it.  `paired`: the timed
step of a steady-state or training row (bench/measure.py builds both) for
hub_tf1 and the floor in one process, in alternating blocks, so that what
differs between processes (where memory landed, the machine's load) is
shared; once with hub_tf1's session built first, once with the floor's.
Each case runs in a fresh process.
"""

import argparse
import contextlib
import gc
import os
import subprocess
import sys
import time

import host_memory  # bench/, beside this file.
import measure  # bench/, beside this file.
import models  # bench/, beside this file.

_MODULES = os.path.join("bench", "work", "full", "modules")
_GC_MODES = ("as_left", "collect", "freeze", "disabled")
_GRAPPLER_MODES = ("default", "no_meta_optimizer")
_CONSTRUCT_GC_MODES = ("as_left", "collect", "disabled")
# Rows whose step `paired` measures: (units per block, rounds).
_PAIRED_ROWS = {"steady_mlp_small": (50, 20), "steady_text": (50, 20),
                "bert_train": (2, 10)}


def _probe_gc(mode: str, modules: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  with tf.Graph().as_default():
    m = hub.Module(os.path.join(modules, "mlp_small"))
    x = tf.compat.v1.placeholder(tf.float32, [None, 256])
    tracked = len(gc.get_objects())
    if mode == "collect":
      gc.collect()
    elif mode == "freeze":
      gc.freeze()
    elif mode == "disabled":
      gc.disable()
    times = []
    for _ in range(50):
      start = time.perf_counter()
      m(x)
      times.append(time.perf_counter() - start)
  gc.enable()
  start = time.perf_counter()
  gc.collect()
  full = time.perf_counter() - start
  later = sum(times[10:]) / len(times[10:])
  return ("gc %-9s growth=%.2fx  tracked_after_setup=%d  full_collection_ms=%.0f"
          % (mode, later / times[0], tracked, full * 1e3))


def _probe_grappler(mode: str, modules: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  with tf.Graph().as_default():
    hub.Module(os.path.join(modules, "mlp_deep"))
    init = tf.compat.v1.global_variables_initializer()
    config = tf.compat.v1.ConfigProto()
    if mode == "no_meta_optimizer":
      config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf.compat.v1.Session(config=config) as session:
      runs = []
      for _ in range(2):
        start = time.perf_counter()
        session.run(init)
        runs.append(time.perf_counter() - start)
  return "grappler %-17s first_run_s=%.3f  second_run_s=%.3f" % (
      mode, runs[0], runs[1])


def _probe_construct_gc(mode: str, modules: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top,protected-access
  from hub_tf1.module import variable_writer
  tf.compat.v1.disable_eager_execution()
  writer_s = []
  build_writer = variable_writer.build_writer

  def timed_build_writer(*args, **kwargs):
    start = time.perf_counter()
    result = build_writer(*args, **kwargs)
    writer_s.append(time.perf_counter() - start)
    return result

  variable_writer.build_writer = timed_build_writer
  # pylint: enable=g-import-not-at-top,protected-access
  full_collections = []

  def on_gc(phase, info):
    if info["generation"] == 2:
      full_collections.append((phase, time.perf_counter()))

  with tf.Graph().as_default():
    if mode == "collect":
      gc.collect()
    elif mode == "disabled":
      gc.disable()
    gc.callbacks.append(on_gc)
    start = time.perf_counter()
    hub.Module(os.path.join(modules, "mlp_deep"))
    construct_s = time.perf_counter() - start
    gc.callbacks.remove(on_gc)
  gc.enable()
  starts = [t for phase, t in full_collections if phase == "start"]
  stops = [t for phase, t in full_collections if phase == "stop"]
  return ("construct_gc %-8s construct_s=%.3f  writer_ops_s=%.3f  "
          "full_collections=%d (%.3f s)" % (
              mode, construct_s, sum(writer_s), len(starts),
              sum(b - a for a, b in zip(starts, stops))))


def _settle_page_cache() -> None:
  if not measure.settle_page_cache():
    raise SystemExit("probes.py export: dropping the page cache needs root")


class _TimedFile:
  """A data file whose `write` calls are timed (the probe's only hook)."""

  def __init__(self, out, log):
    self._out, self._log = out, log

  def write(self, data):
    start = time.perf_counter()
    self._out.write(data)
    self._log.append((start, time.perf_counter() - start))

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    return self._out.__exit__(*exc_info)


def _probe_export(mode: str, modules: str) -> str:
  """`mode` is "<module>:<applications>" (see --export_module)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top,protected-access
  from hub_tf1 import _tf_internal
  from hub_tf1.format import bundle_writer
  tf.compat.v1.disable_eager_execution()
  writes, built, fetched = [], [], []
  open_data_file = bundle_writer._open_data_file
  bundle_writer._open_data_file = (
      lambda path: _TimedFile(open_data_file(path), writes))
  make_callable = _tf_internal.callable_without_copy

  def timed_make_callable(session, fetches):
    start = time.perf_counter()
    run = make_callable(session, fetches)
    built.append(time.perf_counter() - start)

    def timed_run():
      start = time.perf_counter()
      arrays = run()
      fetched.append(time.perf_counter() - start)
      return arrays

    return timed_run

  _tf_internal.callable_without_copy = timed_make_callable
  # pylint: enable=g-import-not-at-top,protected-access
  scratch = tempfile.mkdtemp(prefix="probe_export_")
  try:
    name, applications, run_first = mode.split(":")
    with tf.Graph().as_default():
      module = hub.Module(os.path.join(modules, name))
      signature = models.REALISTIC_SIGNATURE.get(name, "default")
      inputs = module.get_input_info_dict(signature)
      applied = []
      for _ in range(int(applications)):  # As the BERT/ELMo rows, new inputs.
        x = {key: tf.compat.v1.placeholder(info.dtype, info.get_shape())
             for key, info in inputs.items()}
        applied.append((x, module(x, signature=signature, as_dict=True)))
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        if run_first == "run":  # As the rows: the first application, once.
          x, outputs = applied[0]
          values = models.realistic_feed(name, models.FULL)
          session.run(outputs[models.REALISTIC_OUTPUT[name]],
                      {x[k]: v for k, v in values.items()})
        _settle_page_cache()
        export_start = time.perf_counter()
        module.export(os.path.join(scratch, "exported"), session)
        export_s = time.perf_counter() - export_start
    written = sum(os.path.getsize(os.path.join(d, n))
                  for d, _, names in os.walk(scratch) for n in names
                  if ".data-" in n)
    data = np.ones([written], np.uint8)
    _settle_page_cache()
    start = time.perf_counter()
    with open(os.path.join(scratch, "plain"), "wb", buffering=0) as f:
      f.write(memoryview(data))
    floor_s = time.perf_counter() - start
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  if not fetched:
    return "export: the in-process writer did not run; no split"
  return ("export total_s=%.3f  first_write_at_s=%.3f  write_calls_s=%.3f  "
          "callable_build_s=%.3f  fetch_s=%.4f  plain_write_%dMB_s=%.3f" % (
              export_s, writes[0][0] - export_start,
              sum(w for _, w in writes), built[0], fetched[0],
              written // 10**6, floor_s))


def _probe_paired(mode: str, modules: str) -> str:
  """`mode` is "<row>:<first>", `first` "hub_tf1" or "floor" (built first)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  import rows  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  row_name, first = mode.split(":")
  row = rows.ROWS_BY_NAME[row_name]
  module_dir = os.path.join(modules, row.module)
  block, rounds = _PAIRED_ROWS[row_name]
  steady = row.kind == "steady"
  make = measure.steady_session if steady else measure.train_session
  order = ("hub_tf1", "floor") if first == "hub_tf1" else ("floor", "hub_tf1")
  sessions, units = [], {}
  for impl in order:
    session, unit = make(hub if impl == "hub_tf1" else None, models.FULL,
                         module_dir, row.module)
    sessions.append(session)
    units[impl] = unit
    for _ in range(10 if steady else 2):  # Warm-up.
      unit()
  times = {impl: [] for impl in order}
  try:
    for _ in range(rounds):
      for impl in order:
        for _ in range(block):
          start = time.perf_counter()
          units[impl]()
          times[impl].append(time.perf_counter() - start)
  finally:
    for session in sessions:
      session.close()
  stats = {}
  for impl, ts in times.items():
    ts.sort()
    stats[impl] = (ts[len(ts) // 10], ts[len(ts) // 2])
  return ("paired %s (%s built first, %d each)  hub_tf1 p10=%.2f ms "
          "median=%.2f ms  floor p10=%.2f ms median=%.2f ms  "
          "hub_tf1/floor p10 %.3fx median %.3fx" % (
              row_name, first, len(times["floor"]),
              1000 * stats["hub_tf1"][0], 1000 * stats["hub_tf1"][1],
              1000 * stats["floor"][0], 1000 * stats["floor"][1],
              stats["hub_tf1"][0] / stats["floor"][0],
              stats["hub_tf1"][1] / stats["floor"][1]))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("probe",
                      choices=("gc", "grappler", "export", "construct_gc",
                               "paired"))
  parser.add_argument("--modules", default=_MODULES)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--export_module", default="embedding",
                      help="export: the bench module to export")
  parser.add_argument("--applications", type=int, default=0,
                      help="export: signature applications before it "
                      "(the BERT and ELMo rows have 11, then run one)")
  parser.add_argument("--run_first", action="store_true",
                      help="export: run the first application once before "
                      "(as the BERT and ELMo rows; needs --applications)")
  parser.add_argument("--row", default="steady_text",
                      choices=sorted(_PAIRED_ROWS),
                      help="paired: the row whose step it measures")
  parser.add_argument("--mode", help=argparse.SUPPRESS)  # One child process.
  args = parser.parse_args()
  if args.run_first and (args.applications < 1 or
                         args.export_module not in models.REALISTIC_OUTPUT):
    parser.error("--run_first runs the first of --applications (got %d) of "
                 "a module with a realistic feed (%s; got %r)" % (
                     args.applications, ", ".join(sorted(
                         models.REALISTIC_OUTPUT)), args.export_module))
  export_modes = ("%s:%d:%s" % (args.export_module, args.applications,
                                 "run" if args.run_first else "no_run"),)
  probe, modes = {"gc": (_probe_gc, _GC_MODES),
                  "grappler": (_probe_grappler, _GRAPPLER_MODES),
                  "export": (_probe_export, export_modes),
                  "construct_gc": (_probe_construct_gc,
                                   _CONSTRUCT_GC_MODES),
                  "paired": (_probe_paired,
                             tuple("%s:%s" % (args.row, first)
                                   for first in ("hub_tf1", "floor")))
                 }[args.probe]
  if args.mode:
    print(probe(args.mode, args.modules), flush=True)
    return
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  steady = (host_memory.steady_host_memory()
            if args.probe in ("export", "paired")
            else contextlib.nullcontext("free page reporting left as it is"))
  with steady as note:
    print("probes: %s" % note, flush=True)
    for _ in range(args.reps):
      for mode in modes:
        child = subprocess.run(
            [sys.executable, __file__, args.probe, "--mode", mode,
             "--modules", args.modules],
            env=env, check=True, capture_output=True, text=True)
        print(child.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
  main()
