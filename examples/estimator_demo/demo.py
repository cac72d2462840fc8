"""The main job: make a hub module, fine-tune it with tf.estimator, export it.

  python -m examples.estimator_demo            # 1 chief, 2 workers, 2 ps,
                                               # 1 evaluator (processes)
  python -m examples.estimator_demo --local    # everything in-process

Steps (each printed as it happens):
1. build a text-embedding module with `hub_tf1.create_module_spec` (vocabulary
   file asset, lookup table, embedding variable partitioned in two) and export
   it;
2. load it with `hub_tf1.Module` and `text_embedding_column`;
3. train a sentiment classifier on a synthetic data set with
   `tf.estimator.train_and_evaluate` on a local parameter-server cluster; the
   evaluator's `LatestModuleExporter` exports the fine-tuned module;
4. check where the module's variables lived (the ps tasks);
5. reload the newest export with `hub_tf1.Module`, check that its variables
   equal the final checkpoint's, and print what training changed.

Everything is written under --output_dir (default ./demo_output), which is
cleared of the demo's own sub-directories first.  Exits non-zero when a step
fails.
"""

import os
import re
import sys
import time
from typing import Dict, List

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from estimator_integration import feature_columns
from examples.estimator_demo import model as demo_model
from tools import local_cluster as cluster_lib

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "demo_output", "Where the demo writes everything.")
_LOCAL = flags.DEFINE_boolean(
    "local", False, "Train in this process instead of a local cluster.")
_WORKERS = flags.DEFINE_integer("workers", 2, "Workers besides the chief.")
_PS = flags.DEFINE_integer("ps", 2, "Parameter-server tasks.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 600, "Global training steps.")
_STEP_DELAY_SECS = flags.DEFINE_float(
    "step_delay_secs", 0.02,
    "Pause after each training step, so that the tiny model trains long "
    "enough for the workers to join.")
_USE_FEATURE_COLUMN = flags.DEFINE_boolean(
    "use_feature_column", True,
    "Model through text_embedding_column; false: hub.Module with "
    "tags={'train'} in TRAIN mode (the fine-tuning path).")
_TIMEOUT = flags.DEFINE_float(
    "timeout", 900.0, "Seconds before the cluster job is stopped.")
_VERBOSE = flags.DEFINE_boolean(
    "verbose", False, "Echo every log line of every task (else a summary).")

# Task output lines worth echoing when not --verbose.
_ECHO_FILTER = (r"HUB_DEMO_EVENT|Saving checkpoints for|Exported \d+ module|"
                r"Exiting evaluation|Saving dict for global step|Traceback|"
                r"Error|error:")
# Demo sub-directories of --output_dir (removed at start).
_OWN_ENTRIES = ("vocabulary.txt", "module", "model", "logs")


def _say(message: str, *args) -> None:
  print("[demo] " + (message % args if args else message), flush=True)


def _prepare_output_dir(output_dir: str) -> str:
  output_dir = os.path.abspath(output_dir)
  tf.io.gfile.makedirs(output_dir)
  for name in _OWN_ENTRIES:
    path = os.path.join(output_dir, name)
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  return output_dir


def _list_files(root: str) -> List[str]:
  found = []
  for dirpath, _, filenames in tf.io.gfile.walk(root):
    for name in filenames:
      found.append(os.path.relpath(os.path.join(dirpath, name), root))
  return sorted(found)


def _step_make_module(output_dir: str) -> str:
  _say("1. Creating a text-embedding module with hub.create_module_spec: "
       "%d-word vocabulary file (asset) + %d OOV bucket, lookup table, "
       "8-dim embedding partitioned in 2, variants: default and {'train'}.",
       len(demo_model.VOCABULARY), demo_model.NUM_OOV_BUCKETS)
  module_dir = demo_model.make_text_module(
      os.path.join(output_dir, "module"),
      vocabulary_path=os.path.join(output_dir, "vocabulary.txt"))
  _say("   exported to %s: %s", module_dir, ", ".join(_list_files(module_dir)))
  return module_dir


def _step_load_module(module_dir: str) -> None:
  _say("2. Loading it back.")
  spec = hub.load_module_spec(module_dir)
  _say("   hub.load_module_spec: tags %s, signatures %s",
       [sorted(t) for t in spec.get_tags()],
       sorted(spec.get_signature_names()))
  with tf.Graph().as_default():
    module = hub.Module(spec)
    sentences = tf.constant(["a really good film", "boring and dull plot"])
    embedded = module(sentences)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      values = session.run(embedded)
  _say("   hub.Module: variables %s; default signature maps 2 sentences to "
       "%s embeddings", sorted(module.variable_map), values.shape)
  column = feature_columns.text_embedding_column(
      demo_model.FEATURE_KEY, module_dir, trainable=True)
  _say("   text_embedding_column: name %s, variable_shape %s",
       column.name, column.variable_shape)


def _step_train(cfg: demo_model.TrainingConfig, output_dir: str) -> bool:
  if _LOCAL.value:
    _say("3. Training locally with tf.estimator.train_and_evaluate "
         "(%d steps).", cfg.max_steps)
    metrics, exports = demo_model.run_train_and_evaluate(cfg)
    _say("   final evaluation: %s", metrics)
    _say("   LatestModuleExporter results: %s", exports)
    return True
  command = [
      sys.executable, "-m", "examples.estimator_demo.trainer",
      "--module_path=" + cfg.module_path,
      "--model_dir=" + cfg.model_dir,
      "--max_steps=%d" % cfg.max_steps,
      "--save_checkpoints_steps=%d" % cfg.save_checkpoints_steps,
      "--eval_throttle_secs=%d" % cfg.eval_throttle_secs,
      "--use_feature_column=%s" % cfg.use_feature_column,
      "--progress_every_n_steps=%d" % cfg.progress_every_n_steps,
      "--step_delay_secs=%g" % cfg.step_delay_secs,
  ]
  log_dir = os.path.join(output_dir, "logs")
  cluster = cluster_lib.LocalCluster(
      command, num_workers=_WORKERS.value, num_ps=_PS.value, evaluator=True,
      echo_filter=None if _VERBOSE.value else _ECHO_FILTER, log_dir=log_dir)
  _say("3. Training with tf.estimator.train_and_evaluate on a local cluster "
       "(one process per task, TF_CONFIG each): %s + evaluator",
       cluster.cluster_spec)
  _say("   full task logs: %s", log_dir)
  start = time.time()
  with cluster:
    try:
      cluster.start()
      code = cluster.wait(_TIMEOUT.value)
    except KeyboardInterrupt:
      _say("   interrupted; stopping the cluster.")
      return False
  _say("   cluster job finished in %.0f s with exit code %d", time.time() - start,
       code)
  for task in cluster.tasks:
    for line in cluster.lines(task):
      match = re.search(r"event=end local_steps=(\d+)", line)
      if match:
        _say("   %s ran %s training steps", task, match.group(1))
  return code == cluster_lib.EXIT_OK


def _step_placement(cfg: demo_model.TrainingConfig,
                    variable_names: List[str]) -> bool:
  scope = demo_model.module_scope(cfg.use_feature_column)
  devices = demo_model.module_variable_devices(cfg.model_dir, scope)
  _say("4. Placement of the module's variables in the chief's graph:")
  ok = True
  for name in sorted(devices):
    if not any(name == v or re.fullmatch(re.escape(v) + r"/part_\d+", name)
               for v in variable_names):
      continue  # Optimizer slots and the like.
    _say("   %s/%s -> %s", scope, name, devices[name] or "(no device)")
    if not _LOCAL.value and not devices[name].startswith("/job:ps/"):
      ok = False
  if not _LOCAL.value:
    parts = {d for n, d in devices.items() if "/part_" in n and
             "Adagrad" not in n}
    _say("   embedding partitions spread over %d ps task(s).", len(parts))
    ok = ok and len(parts) == min(2, _PS.value)
  return ok


def _top_moved(words: List[str], before: np.ndarray, after: np.ndarray,
               count: int) -> List[str]:
  moved = np.linalg.norm(after - before, axis=1)
  order = np.argsort(-moved)[:count]
  return ["%s (%.2f)" % (words[i], moved[i]) for i in order]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _step_compare(cfg: demo_model.TrainingConfig,
                  initial: Dict[str, np.ndarray]) -> bool:
  exports = demo_model.list_exports(cfg.model_dir)
  _say("5. LatestModuleExporter wrote %d export(s) (newest kept): %s",
       len(exports), [os.path.basename(e) for e in exports])
  if not exports:
    _say("   ERROR: no export was written.")
    return False
  newest = os.path.join(exports[-1], demo_model.EXPORT_NAME)
  _say("   newest: %s: %s", newest, ", ".join(_list_files(newest)))
  final = demo_model.module_variable_values(newest)
  checkpoint = tf.train.latest_checkpoint(cfg.model_dir)
  in_checkpoint = demo_model.checkpoint_module_values(
      checkpoint, demo_model.module_scope(cfg.use_feature_column), list(final))
  same = all(np.array_equal(final[k], in_checkpoint[k]) for k in final)
  _say("   reloaded with hub.Module; variables equal those of the final "
       "checkpoint %s: %s", os.path.basename(checkpoint), same)

  words = list(demo_model.VOCABULARY) + ["<oov>"]
  before, after = initial["embeddings"], final["embeddings"]
  _say("   embedding table %s: mean row norm %.3f -> %.3f; rows that moved "
       "most: %s", after.shape, np.linalg.norm(before, axis=1).mean(),
       np.linalg.norm(after, axis=1).mean(),
       ", ".join(_top_moved(words, before, after, 8)))
  signal = [words.index(w) for w in demo_model.POSITIVE_WORDS +
            demo_model.NEGATIVE_WORDS]
  neutral = [words.index(w) for w in demo_model.NEUTRAL_WORDS]
  moved = np.linalg.norm(after - before, axis=1)
  _say("   mean movement: sentiment words %.3f, neutral words %.3f",
       moved[signal].mean(), moved[neutral].mean())
  good, great, bad = (words.index(w) for w in ("good", "great", "bad"))
  _say("   cosine(good, great): %.2f -> %.2f; cosine(good, bad): %.2f -> %.2f",
       _cosine(before[good], before[great]), _cosine(after[good], after[great]),
       _cosine(before[good], before[bad]), _cosine(after[good], after[bad]))
  vectors = demo_model.word_embeddings(newest, ["good", "bad"])
  _say("   'words' signature of the export agrees with the table: %s",
       bool(np.allclose(vectors, after[[good, bad]])))
  return same


def main(argv):
  del argv
  # The demo prints its own account; TensorFlow's deprecation notices (and,
  # with --local, the Estimator's progress logs) would drown it.
  logging.set_verbosity(logging.ERROR)
  tf.get_logger().setLevel("ERROR")
  start = time.time()
  output_dir = _prepare_output_dir(_OUTPUT_DIR.value)
  _say("Writing under %s", output_dir)
  module_dir = _step_make_module(output_dir)
  _step_load_module(module_dir)
  initial = demo_model.module_variable_values(module_dir)

  cfg = demo_model.TrainingConfig(
      module_path=module_dir,
      model_dir=os.path.join(output_dir, "model"),
      max_steps=_MAX_STEPS.value,
      use_feature_column=_USE_FEATURE_COLUMN.value,
      save_checkpoints_steps=max(10, _MAX_STEPS.value // 4),
      eval_throttle_secs=2,
      progress_every_n_steps=100,
      step_delay_secs=_STEP_DELAY_SECS.value)
  if not _step_train(cfg, output_dir):
    _say("FAILED: training did not finish cleanly.")
    return 1
  ok = _step_placement(cfg, list(initial))
  ok = _step_compare(cfg, initial) and ok
  _say("%s in %.0f s.", "Demo finished OK" if ok else "Demo FAILED",
       time.time() - start)
  return 0 if ok else 1


if __name__ == "__main__":
  app.run(main)
