"""Probes behind two explanations in bench/README.md and issue 6's note.

Run from the repository root, after `bash bench/run.sh` generated the modules:

  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py gc
  PYTHONPATH=. .venv/legacy/bin/python bench/probes.py grappler

`gc`: growth (mean of calls 11-50 / call 1) of 50 x m(x) on the small MLP,
with Python's collector as the set-up left it, after `gc.collect()`, after
`gc.freeze()` and disabled; also the objects the collector tracks and the time
of one full collection.  `grappler`: the first and second run of the
initializers of the 200-layer MLP, with the session's default config and with
Grappler's meta optimizer disabled.  Each case runs in a fresh process.
"""

import argparse
import gc
import os
import subprocess
import sys
import time

_MODULES = os.path.join("bench", "work", "full", "modules")
_GC_MODES = ("as_left", "collect", "freeze", "disabled")
_GRAPPLER_MODES = ("default", "no_meta_optimizer")


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


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("probe", choices=("gc", "grappler"))
  parser.add_argument("--modules", default=_MODULES)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--mode", help=argparse.SUPPRESS)  # One child process.
  args = parser.parse_args()
  probe = _probe_gc if args.probe == "gc" else _probe_grappler
  if args.mode:
    print(probe(args.mode, args.modules), flush=True)
    return
  modes = _GC_MODES if args.probe == "gc" else _GRAPPLER_MODES
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  for _ in range(args.reps):
    for mode in modes:
      child = subprocess.run(
          [sys.executable, __file__, args.probe, "--mode", mode,
           "--modules", args.modules],
          env=env, check=True, capture_output=True, text=True)
      print(child.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
  main()
