"""Estimator behaviour through compat's stand-ins, checked against TF 2.15.

`estimator_integration/compat/distribute_training.py` stands in for
`tensorflow.python.distribute.estimator_training` (gone in TF 2.16); on TF
2.15 the layer is a no-op and TensorFlow's own module runs.  Each test runs a
probe script in a fresh interpreter (`sys.executable`, PYTHONPATH=<repo>)
that prints its result as JSON:

* RunConfig from TF_CONFIG for every task of {chief:1, worker:2, ps:2,
  evaluator:1} (the evaluator is outside the cluster spec), with no strategy,
  `train_distribute`, `experimental_distribute`, both (an error),
  `eval_distribute` only, a remote cluster, and a "master" cluster;
* `train_and_evaluate` on a real local cluster (chief, worker, ps,
  evaluator), without and with a ParameterServerStrategy (the second goes
  through the stand-in's `train_and_evaluate`);
* session hooks, early stopping, exporters and canned estimators (their
  export loaded back with `tf.saved_model.load`);
* `tf.compat.v1.layers` with TF_USE_LEGACY_KERAS=1.

Rules of this file: when this interpreter is not TF 2.15 and
`<repo>/.venv/legacy/bin/python` exists, the same probe also runs there (TF
2.15, the reference) and the two results must be equal; every test also
asserts concrete values, so it can fail on either interpreter.  Probes
report only values that do not depend on timing, ports or paths.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any, Dict, List, Optional, Tuple

from absl.testing import absltest
import tensorflow as tf

from tools import local_cluster as cluster

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LEGACY_PYTHON = os.path.join(_REPO, ".venv", "legacy", "bin", "python")
_IS_TF_2_15 = tf.__version__.startswith("2.15.")
_MARK = "PROBE_JSON "
# Bounds that only guard against hangs.
_PROBE_TIMEOUT_SECS = 420
_CLUSTER_TIMEOUT_SECS = 300
_CLUSTER_MAX_STEPS = 30
# Under Bazel, TEST_TARGET names the target (tests/BUILD): the glob target
# runs every test but ClusterTest, `estimator_stand_ins_cluster_test` (tag
# "cluster", long timeout) only ClusterTest; pytest runs them all.
_TEST_TARGET = os.environ.get("TEST_TARGET", "")
_PART = ("all" if not _TEST_TARGET else
         "cluster" if _TEST_TARGET.endswith("_cluster_test") else "local")

# Shared by the training probes: y = 2x + 1 on four points.
_PRELUDE = """
import json, os, sys, tempfile
import estimator_integration  # Installs the layer on TF >= 2.16.
import numpy as np
import tensorflow as tf

X = [[0.0], [1.0], [2.0], [3.0]]

def emit(value):
  print("PROBE_JSON " + json.dumps(value, sort_keys=True), flush=True)

def input_fn():
  x = tf.constant(X)
  return tf.data.Dataset.from_tensors(({"x": x}, 2.0 * x + 1.0)).repeat()

def linear_model_fn(features, labels, mode):
  w = tf.compat.v1.get_variable("w", [1, 1],
                                initializer=tf.compat.v1.zeros_initializer())
  b = tf.compat.v1.get_variable("b", [1],
                                initializer=tf.compat.v1.zeros_initializer())
  y = tf.matmul(features["x"], w) + b
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(mode, predictions={"y": y})
  loss = tf.reduce_mean(tf.square(y - labels), name="loss_value")
  train_op = tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  return tf.estimator.EstimatorSpec(
      mode, loss=loss, train_op=train_op, eval_metric_ops={
          "mae": tf.compat.v1.metrics.mean_absolute_error(labels, y)})
"""

_RUN_CONFIG_PROBE = _PRELUDE + """
import types
from tensorflow.python.distribute import estimator_training  # The stand-in on >= 2.16.

CLUSTER = {"chief": ["host0:2220"], "worker": ["host1:2221", "host2:2222"],
           "ps": ["host3:2223", "host4:2224"]}
TASKS = [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1),
         ("evaluator", 0)]

def ps_strategy():
  return tf.compat.v1.distribute.experimental.ParameterServerStrategy()

def experimental(train=None, remote=None):
  # RunConfig reads these three attributes (DistributeConfig was in contrib).
  return types.SimpleNamespace(train_distribute=train, eval_distribute=None,
                               remote_cluster=remote)

def kwargs(kind):
  if kind == "none":
    return {}
  if kind == "ps_train":
    return {"train_distribute": ps_strategy()}
  if kind == "ps_experimental":
    return {"experimental_distribute": experimental(ps_strategy())}
  if kind == "mirrored":
    return {"train_distribute": tf.distribute.MirroredStrategy(["/cpu:0"])}
  if kind == "both":
    ps = ps_strategy()
    return {"train_distribute": ps, "experimental_distribute": experimental(ps)}
  if kind == "eval_only":
    return {"eval_distribute": tf.distribute.MirroredStrategy(["/cpu:0"])}
  if kind == "remote":
    return {"experimental_distribute": experimental(
        tf.distribute.MirroredStrategy(["/cpu:0"]),
        remote={"worker": ["host9:2229"]})}
  raise ValueError(kind)

def describe(kind):
  try:
    config = tf.estimator.RunConfig(**kwargs(kind))
  except Exception as e:  # pylint: disable=broad-except
    return {"error": type(e).__name__}
  spec = config.cluster_spec
  session_config = config.session_config
  return {
      "task_type": config.task_type, "task_id": config.task_id,
      "is_chief": config.is_chief, "master": config.master,
      "evaluation_master": config.evaluation_master,
      "num_ps_replicas": config.num_ps_replicas,
      "num_worker_replicas": config.num_worker_replicas,
      "global_id_in_cluster": config.global_id_in_cluster,
      "cluster_spec": ((spec if isinstance(spec, dict) else spec.as_dict())
                       if spec else {}),
      "device_filters": (list(session_config.device_filters)
                         if session_config is not None else None),
      "coordinator_mode": getattr(config, "_distribute_coordinator_mode",
                                  None),
      "should_run_coordinator":
          estimator_training.should_run_distribute_coordinator(config),
      "train_distribute": (type(config.train_distribute).__name__
                           if config.train_distribute else None),
  }

def with_tf_config(tf_config, kind):
  os.environ["TF_CONFIG"] = json.dumps(tf_config)
  return describe(kind)

out = {}
for kind in ("none", "ps_train", "ps_experimental", "mirrored", "both",
             "eval_only", "remote"):
  for task_type, index in TASKS:
    out["%s/%s:%d" % (kind, task_type, index)] = with_tf_config(
        {"cluster": CLUSTER, "task": {"type": task_type, "index": index}},
        kind)
for kind in ("none", "ps_train", "remote"):
  out[kind + "/local"] = with_tf_config({}, kind)
for kind in ("none", "ps_train"):
  out[kind + "/master:0"] = with_tf_config(
      {"cluster": {"master": ["host5:2225"], "ps": ["host6:2226"]},
       "task": {"type": "master", "index": 0}}, kind)
emit(out)
"""

# Run by every task of the cluster; argv: model_dir strategy max_steps.
_CLUSTER_PROGRAM = _PRELUDE + """
import time
MODEL_DIR, STRATEGY, MAX_STEPS = sys.argv[1], sys.argv[2], int(sys.argv[3])
TASK = json.loads(os.environ["TF_CONFIG"])["task"]["type"]
WORKER_MARK = os.path.join(os.path.dirname(MODEL_DIR), "worker_built_graph")

def model_fn(features, labels, mode, config):
  spec = config.cluster_spec
  emit({"kind": "model_fn_config/" + mode, "value": {
      "task_type": config.task_type, "task_id": config.task_id,
      "is_chief": config.is_chief,
      "master_is_grpc": config.master.startswith("grpc://"),
      "num_ps_replicas": config.num_ps_replicas,
      "num_worker_replicas": config.num_worker_replicas,
      "global_id_in_cluster": config.global_id_in_cluster,
      "cluster_jobs": sorted(spec.jobs) if spec else []}})
  spec = linear_model_fn(features, labels, mode)
  if mode == tf.estimator.ModeKeys.TRAIN:
    emit({"kind": "devices", "value": {
        v.op.name: v.device for v in tf.compat.v1.global_variables()}})
    if TASK == "worker":
      open(WORKER_MARK, "w").close()
  return spec


class WaitForWorkerHook(tf.compat.v1.train.SessionRunHook):
  # Holds the chief at its first step until the worker has built its graph,
  # so that the worker trains too whatever the processes' timing.
  def before_run(self, run_context):
    deadline = time.time() + 120
    while not os.path.exists(WORKER_MARK) and time.time() < deadline:
      time.sleep(0.2)

kwargs = {}
if STRATEGY == "ps":
  kwargs["train_distribute"] = (
      tf.compat.v1.distribute.experimental.ParameterServerStrategy())
config = tf.estimator.RunConfig(
    model_dir=MODEL_DIR, save_checkpoints_steps=10,
    experimental_max_worker_delay_secs=1, **kwargs)
emit({"kind": "config", "value": {"task_type": config.task_type,
                                  "is_chief": config.is_chief}})
if TASK == "worker":
  # A non-chief that finds the model not ready yet sleeps 30 s before it
  # looks again; start once the chief's first checkpoint exists instead.
  deadline = time.time() + 120
  while not tf.train.latest_checkpoint(MODEL_DIR) and time.time() < deadline:
    time.sleep(0.2)
estimator = tf.estimator.Estimator(model_fn, config=config)
tf.estimator.train_and_evaluate(
    estimator, tf.estimator.TrainSpec(
        input_fn, max_steps=MAX_STEPS,
        hooks=[WaitForWorkerHook()] if TASK == "chief" else []),
    tf.estimator.EvalSpec(input_fn, steps=2, start_delay_secs=0,
                          throttle_secs=1))
if TASK == "chief":
  emit({"kind": "final_step",
        "value": int(tf.train.load_variable(MODEL_DIR, "global_step"))})
if TASK == "evaluator":
  evals = []
  for path in sorted(tf.io.gfile.glob(
      os.path.join(estimator.eval_dir(), "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags = sorted(v.tag for v in event.summary.value)
      if "loss" in tags:
        evals.append({"step": int(event.step), "tags": tags})
  emit({"kind": "evals", "value": evals})
emit({"kind": "done", "value": TASK})
"""

_HOOKS_PROBE = _PRELUDE + """
ROOT = tempfile.mkdtemp()

class CountingHook(tf.compat.v1.train.SessionRunHook):
  def __init__(self):
    self.counts = dict.fromkeys(
        ["begin", "after_create_session", "before_run", "after_run", "end"], 0)
    self.steps = []  # Global step after each step.
  def begin(self):
    self.counts["begin"] += 1
    self._step = tf.compat.v1.train.get_global_step()
  def after_create_session(self, session, coord):
    self.counts["after_create_session"] += 1
  def before_run(self, run_context):
    self.counts["before_run"] += 1
  def after_run(self, run_context, run_values):
    self.counts["after_run"] += 1
    # Read after the step: a fetch in the step itself races its increment.
    self.steps.append(int(run_context.session.run(self._step)))
  def end(self, session):
    self.counts["end"] += 1

def checkpoint_steps(directory):
  state = tf.train.get_checkpoint_state(directory)
  return sorted(int(p.rsplit("-", 1)[1])
                for p in (state.all_model_checkpoint_paths if state else []))

config = tf.estimator.RunConfig(save_checkpoints_steps=1000,
                                log_step_count_steps=1000)
est = tf.estimator.Estimator(linear_model_fn, config=config,
                             model_dir=os.path.join(ROOT, "a"))
out = {}
counter = CountingHook()
logged = []
logging_hook = tf.compat.v1.train.LoggingTensorHook(
    {"loss": "loss_value:0"}, every_n_iter=3,
    formatter=lambda values: logged.append(float(values["loss"])) or "loss")
# A user CheckpointSaverHook replaces the Estimator's own saver.
saver_hook = tf.compat.v1.train.CheckpointSaverHook(est.model_dir,
                                                    save_steps=4)
est.train(input_fn, hooks=[counter, logging_hook, saver_hook,
                           tf.compat.v1.train.StopAtStepHook(last_step=10)])
out["last_step"] = {
    "counts": counter.counts, "steps": counter.steps,
    "logged_times": len(logged),
    "logged_loss_decreases": logged == sorted(logged, reverse=True),
    "checkpoint_steps": checkpoint_steps(est.model_dir),
    "global_step": int(est.get_variable_value("global_step"))}
counter = CountingHook()
est.train(input_fn, hooks=[counter,
                           tf.compat.v1.train.StopAtStepHook(num_steps=5)])
out["num_steps"] = {"steps": counter.steps,
                    "global_step": int(est.get_variable_value("global_step"))}

# Early stopping reads the eval metrics in eval_dir().  Its hooks add a
# variable, so they are in the graph from the first checkpoint on.
b = tf.estimator.Estimator(linear_model_fn, config=config,
                           model_dir=os.path.join(ROOT, "b"))

def early(kind, value):
  if kind == "no_decrease":
    return tf.estimator.experimental.stop_if_no_decrease_hook(
        b, "loss", max_steps_without_decrease=value, run_every_secs=None,
        run_every_steps=1)
  return tf.estimator.experimental.stop_if_higher_hook(
      b, "loss", threshold=value, run_every_secs=None, run_every_steps=1)

def train_b(max_steps, hook):
  counter = CountingHook()
  b.train(input_fn, hooks=[counter, hook], max_steps=max_steps)
  return {"runs": len(counter.steps),
          "first": counter.steps[0] if counter.steps else None,
          "global_step": int(b.get_variable_value("global_step"))}

out["no_decrease_0_without_evals"] = train_b(5, early("no_decrease", 0))
b.evaluate(input_fn, steps=1)  # At step 5.
out["no_decrease_1000"] = train_b(12, early("no_decrease", 1000))
b.evaluate(input_fn, steps=1)  # At step 12, a lower loss.
out["no_decrease_0"] = train_b(100, early("no_decrease", 0))
out["higher_than_minus_1"] = train_b(100, early("higher", -1.0))
out["higher_than_1e9"] = train_b(20, early("higher", 1e9))
emit(out)
"""

_EXPORTERS_PROBE = _PRELUDE + """
def serving_input_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
  return tf.estimator.export.ServingInputReceiver({"x": x}, {"x": x})

est = tf.estimator.Estimator(
    linear_model_fn, model_dir=tempfile.mkdtemp(),
    config=tf.estimator.RunConfig(save_checkpoints_steps=10))
exporters = [
    tf.estimator.LatestExporter("latest", serving_input_fn,
                                exports_to_keep=2),
    tf.estimator.BestExporter("best", serving_input_fn, exports_to_keep=1),
    tf.estimator.FinalExporter("final", serving_input_fn)]
result = tf.estimator.train_and_evaluate(
    est, tf.estimator.TrainSpec(input_fn, max_steps=30),
    tf.estimator.EvalSpec(input_fn, steps=1, exporters=exporters,
                          throttle_secs=0, start_delay_secs=0))
eval_result, export_results = result if result else (None, [])
expected = np.array([p["y"] for p in est.predict(
    lambda: tf.data.Dataset.from_tensors({"x": tf.constant(X)}))], np.float32)

def text(path):
  return path.decode() if isinstance(path, bytes) else path

out = {
    "eval_global_step": (int(eval_result["global_step"])
                         if eval_result else None),
    "export_result_exporters": sorted(
        os.path.basename(os.path.dirname(text(p))) for p in export_results),
    "checkpoint_steps": sorted(
        int(p.rsplit("-", 1)[1]) for p in tf.train.get_checkpoint_state(
            est.model_dir).all_model_checkpoint_paths),
    "predict_close_to_line": bool(np.allclose(
        expected, 2.0 * np.array(X) + 1.0, atol=0.5)),
}
for name in ("latest", "best", "final"):
  base = os.path.join(est.model_dir, "export", name)
  dirs = sorted(os.path.join(base, d.rstrip("/"))
                for d in tf.io.gfile.listdir(base)) if tf.io.gfile.exists(
                    base) else []
  entry = {"count": len(dirs), "complete": all(
      tf.io.gfile.exists(os.path.join(d, "saved_model.pb")) and
      tf.io.gfile.exists(os.path.join(d, "variables", "variables.index"))
      for d in dirs)}
  if dirs:
    signature = tf.saved_model.load(dirs[-1]).signatures["serving_default"]
    got = signature(x=tf.constant(X))
    entry["signature_outputs"] = sorted(got)
    entry["matches_predict"] = bool(np.allclose(got["y"].numpy(), expected,
                                                atol=1e-6))
  out[name] = entry
emit(out)
"""

_CANNED_PROBE = _PRELUDE + """
import itertools
ROOT = tempfile.mkdtemp()
FEATURES = {"x": X, "c": [["a"], ["b"], ["a"], ["b"]]}
LABELS = [[0], [0], [1], [1]]

def canned_input_fn():
  return tf.data.Dataset.from_tensors(
      ({k: tf.constant(v) for k, v in FEATURES.items()},
       tf.constant(LABELS))).repeat()

def predict_input_fn():
  return tf.data.Dataset.from_tensors(
      {k: tf.constant(v) for k, v in FEATURES.items()})

def serialized_examples():
  return tf.constant([tf.train.Example(features=tf.train.Features(feature={
      "x": tf.train.Feature(float_list=tf.train.FloatList(
          value=FEATURES["x"][i])),
      "c": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[FEATURES["c"][i][0].encode()])),
  })).SerializeToString() for i in range(4)])

def build(name, directory):
  fc = tf.compat.v1.feature_column if name.startswith("v1_") else (
      tf.feature_column)
  x = fc.numeric_column("x")
  c = fc.categorical_column_with_vocabulary_list("c", ["a", "b"])
  indicator = fc.indicator_column(c)
  if name == "v1_dnn_classifier":
    return tf.compat.v1.estimator.DNNClassifier(
        hidden_units=[4], feature_columns=[x, indicator], model_dir=directory,
        optimizer="Adagrad"), [x, indicator], "probabilities"
  if name == "dnn_classifier":
    return tf.estimator.DNNClassifier(
        hidden_units=[4], feature_columns=[x, indicator], model_dir=directory,
        optimizer="Adagrad"), [x, indicator], "probabilities"
  if name == "linear_regressor":
    return tf.estimator.LinearRegressor(
        feature_columns=[x, c], model_dir=directory,
        optimizer="Ftrl"), [x, c], "predictions"
  if name == "dnn_linear_combined_classifier":
    return tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=[c], dnn_feature_columns=[x],
        dnn_hidden_units=[4], linear_optimizer="Ftrl",
        dnn_optimizer="Adagrad", model_dir=directory), [x, c], "probabilities"
  return tf.estimator.BaselineClassifier(
      model_dir=directory, optimizer="Ftrl"), [x, c], "probabilities"

out = {}
for name in ("v1_dnn_classifier", "dnn_classifier", "linear_regressor",
             "dnn_linear_combined_classifier", "baseline_classifier"):
  est, columns, key = build(name, os.path.join(ROOT, name))
  est.train(canned_input_fn, max_steps=3)
  metrics = est.evaluate(canned_input_fn, steps=1)
  # islice: BaselineClassifier's predictions do not read the input, so its
  # predict() never reaches the end of the dataset.
  predictions = list(itertools.islice(est.predict(predict_input_fn), 4))
  receiver = tf.estimator.export.build_parsing_serving_input_receiver_fn(
      tf.feature_column.make_parse_example_spec(columns))
  export_dir = est.export_saved_model(os.path.join(ROOT, name + "_export"),
                                      receiver)
  loaded = tf.saved_model.load(
      export_dir.decode() if isinstance(export_dir, bytes) else export_dir)
  got = loaded.signatures["predict"](examples=serialized_examples())
  serving = loaded.signatures["serving_default"]
  serving_inputs = sorted(serving.structured_input_signature[1])
  served = serving(**{serving_inputs[0]: serialized_examples()})
  out[name] = {
      "global_step": int(metrics["global_step"]),
      "metric_keys": sorted(metrics),
      "prediction_keys": sorted(predictions[0]),
      "predictions": len(predictions),
      "signatures": sorted(loaded.signatures),
      "predict_outputs": sorted(got),
      "serving_default_inputs": serving_inputs,
      "serving_default_outputs": sorted(served),
      "export_matches_predict": bool(np.allclose(
          got[key].numpy(), np.array([p[key] for p in predictions]),
          atol=1e-5)),
  }
emit(out)
"""

_LEGACY_LAYERS_PROBE = _PRELUDE + """
def model_fn(features, labels, mode):
  y = tf.compat.v1.layers.dense(features["x"], 1, name="dense")
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(mode, predictions={"y": y})
  loss = tf.reduce_mean(tf.square(y - labels))
  train_op = tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

est = tf.estimator.Estimator(model_fn, model_dir=tempfile.mkdtemp())
est.train(input_fn, max_steps=3)
predictions = [p["y"].tolist() for p in est.predict(
    lambda: tf.data.Dataset.from_tensors({"x": tf.constant([[1.0], [2.0]])}))]
emit({"global_step": int(est.get_variable_value("global_step")),
      "variables": sorted(n for n in est.get_variable_names()
                          if n.startswith("dense")),
      "prediction_shape": list(np.shape(predictions))})
"""

_LAYERS_WITHOUT_FLAG_PROBE = """
import json
import estimator_integration  # Installs the layer on TF >= 2.16.
import tensorflow as tf
try:
  tf.compat.v1.layers.dense
  result = {"available": True, "error": None}
except AttributeError as e:
  result = {"available": False, "error": str(e)}
print("PROBE_JSON " + json.dumps(result))
"""


def _env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
  """This process's environment for a probe: repo importable, CPU only."""
  env = dict(os.environ)
  env.pop("TF_USE_LEGACY_KERAS", None)
  env.pop("TF_CONFIG", None)
  env["PYTHONPATH"] = os.pathsep.join(
      [_REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  env["CUDA_VISIBLE_DEVICES"] = ""
  env.update(extra or {})
  return env


def _parse(stdout: str) -> List[Any]:
  """Every JSON value a probe printed after the marker, in order."""
  return [json.loads(line.split(_MARK, 1)[1])
          for line in stdout.splitlines() if _MARK in line]


def _reference_python() -> Optional[str]:
  """The TF 2.15 interpreter to compare with, or None (this is TF 2.15)."""
  if _IS_TF_2_15 or not os.path.exists(_LEGACY_PYTHON):
    return None
  return _LEGACY_PYTHON


class _ProbeTestCase(absltest.TestCase):

  part = "local"  # Which Bazel target runs the class (see _PART).

  def setUp(self):
    super().setUp()
    if _PART not in ("all", self.part):
      self.skipTest("runs in the %s target, not in %s" %
                    (self.part, _TEST_TARGET))

  def _start(self, python: str, code: str,
             env: Dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [python, "-c", code], env=env, cwd=_REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    self.addCleanup(process.kill)
    return process

  def _finish(self, process: subprocess.Popen, what: str) -> Any:
    try:
      stdout, stderr = process.communicate(timeout=_PROBE_TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
      process.kill()
      self.fail("%s timed out" % what)
    self.assertEqual(process.returncode, 0,
                     "%s failed:\n%s" % (what, stderr[-4000:]))
    values = _parse(stdout)
    self.assertLen(values, 1, "%s printed no single result" % what)
    return values[0]

  def _probe(self, code: str, env: Optional[Dict[str, str]] = None,
             reference_env: Optional[Dict[str, str]] = None) -> Any:
    """Runs `code` here and, when there is one, under TF 2.15 (in parallel).

    Args:
      code: the probe script.
      env: extra environment for this interpreter's run.
      reference_env: extra environment for the TF 2.15 run (default `env`).

    Returns:
      This interpreter's result, after asserting that it equals TF 2.15's.
    """
    own = self._start(sys.executable, code, _env(env))
    reference_python = _reference_python()
    reference = None
    if reference_python:
      reference = self._start(
          reference_python, code,
          _env(env if reference_env is None else reference_env))
    result = self._finish(own, "probe (TF %s)" % tf.__version__)
    if reference is not None:
      expected = self._finish(reference, "reference probe (TF 2.15)")
      self.assertEqual(result, expected,
                       "TF %s differs from TF 2.15" % tf.__version__)
    return result


class RunConfigTest(_ProbeTestCase):

  def test_run_config_from_tf_config(self):
    result = self._probe(_RUN_CONFIG_PROBE)
    cluster_dict = {
        "chief": ["host0:2220"], "worker": ["host1:2221", "host2:2222"],
        "ps": ["host3:2223", "host4:2224"]}
    expected_between_graph = {
        "chief:0": ("chief", 0, True, "grpc://host0:2220", 0,
                    ["/job:ps", "/job:chief"]),
        "worker:0": ("worker", 0, False, "grpc://host1:2221", 1,
                     ["/job:ps", "/job:worker/task:0"]),
        "worker:1": ("worker", 1, False, "grpc://host2:2222", 2,
                     ["/job:ps", "/job:worker/task:1"]),
        "ps:0": ("ps", 0, False, "grpc://host3:2223", 3,
                 ["/job:ps", "/job:worker", "/job:chief", "/job:master"]),
        "ps:1": ("ps", 1, False, "grpc://host4:2224", 4,
                 ["/job:ps", "/job:worker", "/job:chief", "/job:master"]),
    }
    for kind in ("none", "eval_only"):  # No training strategy: no coordinator.
      for task, (task_type, task_id, is_chief, master, global_id,
                 filters) in expected_between_graph.items():
        got = result["%s/%s" % (kind, task)]
        self.assertEqual(
            (got["task_type"], got["task_id"], got["is_chief"],
             got["master"], got["global_id_in_cluster"],
             got["device_filters"]),
            (task_type, task_id, is_chief, master, global_id, filters),
            (kind, task))
        self.assertEqual(got["evaluation_master"], "")
        self.assertEqual((got["num_ps_replicas"], got["num_worker_replicas"]),
                         (2, 3))
        self.assertEqual(got["cluster_spec"], cluster_dict)
        self.assertIsNone(got["coordinator_mode"])
        self.assertFalse(got["should_run_coordinator"])
      evaluator = result[kind + "/evaluator:0"]
      self.assertEqual(
          (evaluator["task_type"], evaluator["is_chief"], evaluator["master"],
           evaluator["cluster_spec"], evaluator["num_ps_replicas"],
           evaluator["num_worker_replicas"],
           evaluator["global_id_in_cluster"], evaluator["device_filters"]),
          ("evaluator", False, "", {}, 0, 0, None, None))
    # With a training strategy the coordinator sets the task up later; the
    # RunConfig holds the cluster and local defaults until then.
    for kind, strategy in (("ps_train", "ParameterServerStrategyV1"),
                           ("ps_experimental", "ParameterServerStrategyV1"),
                           ("mirrored", "MirroredStrategy")):
      for task in list(expected_between_graph) + ["evaluator:0"]:
        got = result["%s/%s" % (kind, task)]
        self.assertEqual(
            (got["coordinator_mode"], got["should_run_coordinator"],
             got["train_distribute"], got["cluster_spec"], got["task_type"],
             got["task_id"], got["is_chief"], got["master"],
             got["num_ps_replicas"], got["num_worker_replicas"],
             got["global_id_in_cluster"], got["device_filters"]),
            ("independent_worker", True, strategy, cluster_dict, "worker", 0,
             True, "", 0, 1, 0, None), (kind, task))
    for task in list(expected_between_graph) + ["evaluator:0"]:
      self.assertEqual(result["both/" + task], {"error": "ValueError"})
      # A remote cluster and a TF_CONFIG cluster are exclusive.
      self.assertEqual(result["remote/" + task], {"error": "ValueError"})
    remote = result["remote/local"]
    self.assertEqual(
        (remote["coordinator_mode"], remote["should_run_coordinator"],
         remote["cluster_spec"]),
        ("standalone_client", True, {"worker": ["host9:2229"]}))
    for kind in ("none", "ps_train"):
      local = result[kind + "/local"]
      self.assertEqual(
          (local["task_type"], local["is_chief"], local["cluster_spec"],
           local["coordinator_mode"], local["should_run_coordinator"],
           local["num_worker_replicas"]),
          ("worker", True, {}, None, False, 1))
    master = result["none/master:0"]
    self.assertEqual(
        (master["task_type"], master["is_chief"], master["master"],
         master["num_ps_replicas"], master["device_filters"]),
        ("master", True, "grpc://host5:2225", 1, ["/job:ps", "/job:master"]))
    # ParameterServerStrategy refuses a "master" job.
    self.assertEqual(result["ps_train/master:0"], {"error": "ValueError"})


class ClusterTest(_ProbeTestCase):
  """train_and_evaluate with 1 chief, 1 worker, 1 ps and 1 evaluator."""

  part = "cluster"

  def _start_cluster(self, python: str, strategy: str, name: str):
    root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    log_dir = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", root),
        "%s-%s-logs" % (name, strategy))
    local = cluster.LocalCluster(
        [python, "-c", _CLUSTER_PROGRAM, os.path.join(root, "model"),
         strategy, str(_CLUSTER_MAX_STEPS)],
        num_workers=1, num_ps=1, evaluator=True, env=_env(), cwd=_REPO,
        output=sys.stderr, echo_filter=r"PROBE_JSON|Traceback|Error",
        log_dir=log_dir)
    self.addCleanup(local.stop)
    local.start()
    return local

  def _summary(self, local) -> Dict[str, Any]:
    """What each task reported, reduced to timing-independent values."""
    summary = {}
    for task in local.tasks:
      for record in _parse("\n".join(local.lines(task))):
        kind, value = record["kind"], record["value"]
        if kind == "final_step":
          summary["chief_final_step_ok"] = (
              _CLUSTER_MAX_STEPS <= value <= _CLUSTER_MAX_STEPS + 2)
        elif kind == "evals":
          summary["evaluator_last_eval_ok"] = bool(value) and (
              value[-1]["step"] >= _CLUSTER_MAX_STEPS)
          summary["evaluator_eval_tags"] = sorted(
              {tag for e in value for tag in e["tags"]})
        else:
          summary["%s/%s" % (task, kind)] = value
    return summary

  def _check(self, strategy: str) -> Dict[str, Any]:
    own = self._start_cluster(sys.executable, strategy, "own")
    reference_python = _reference_python()
    reference = (self._start_cluster(reference_python, strategy, "reference")
                 if reference_python else None)
    for local, what in ((own, "TF %s" % tf.__version__),
                        (reference, "TF 2.15")):
      if local is None:
        continue
      code = local.wait(_CLUSTER_TIMEOUT_SECS)
      self.assertEqual(code, cluster.EXIT_OK,
                       "%s cluster failed (exit %d); failed tasks: %s" %
                       (what, code, local.failed_tasks()))
    result = self._summary(own)
    if reference is not None:
      self.assertEqual(result, self._summary(reference),
                       "TF %s differs from TF 2.15" % tf.__version__)
    self.assertTrue(result.get("chief_final_step_ok"), result)
    self.assertTrue(result.get("evaluator_last_eval_ok"), result)
    self.assertEqual(result.get("evaluator_eval_tags"), ["loss", "mae"])
    # The ps tasks never return (LocalCluster stops them).
    for task in ("chief:0", "worker:0", "evaluator:0"):
      self.assertEqual(result.get(task + "/done"), task.split(":")[0])
    self.assertNotIn("ps:0/done", result)
    on_ps = {"b": "/job:ps/task:0", "w": "/job:ps/task:0",
             "global_step": "/job:ps/task:0"}
    for task in ("chief:0", "worker:0"):
      self.assertEqual(result.get(task + "/devices"), on_ps, task)
    self.assertEqual(result["chief:0/model_fn_config/train"], {
        "task_type": "chief", "task_id": 0, "is_chief": True,
        "master_is_grpc": True, "num_ps_replicas": 1,
        "num_worker_replicas": 2, "global_id_in_cluster": 0,
        "cluster_jobs": ["chief", "ps", "worker"]})
    self.assertEqual(result["worker:0/model_fn_config/train"], {
        "task_type": "worker", "task_id": 0, "is_chief": False,
        "master_is_grpc": True, "num_ps_replicas": 1,
        "num_worker_replicas": 2, "global_id_in_cluster": 1,
        "cluster_jobs": ["chief", "ps", "worker"]})
    evaluator = result["evaluator:0/model_fn_config/eval"]
    self.assertEqual(
        (evaluator["task_type"], evaluator["cluster_jobs"],
         evaluator["global_id_in_cluster"], evaluator["num_ps_replicas"],
         evaluator["master_is_grpc"]), ("evaluator", [], None, 0, False))
    return result

  def test_without_strategy(self):
    result = self._check("none")
    self.assertEqual(result["chief:0/config"],
                     {"task_type": "chief", "is_chief": True})
    self.assertEqual(result["ps:0/config"],
                     {"task_type": "ps", "is_chief": False})
    self.assertFalse(result["evaluator:0/model_fn_config/eval"]["is_chief"])

  def test_with_parameter_server_strategy(self):
    # Goes through distribute_training.train_and_evaluate (the stand-in).
    result = self._check("ps")
    for task in ("chief:0", "worker:0", "ps:0", "evaluator:0"):
      # Until the coordinator runs, every RunConfig has local defaults.
      self.assertEqual(result[task + "/config"],
                       {"task_type": "worker", "is_chief": True}, task)
    # The coordinator's evaluator context counts as chief (TF 2.15 too).
    self.assertTrue(result["evaluator:0/model_fn_config/eval"]["is_chief"])


class HooksTest(_ProbeTestCase):

  def test_session_hooks_and_early_stopping(self):
    result = self._probe(_HOOKS_PROBE)
    last_step = result["last_step"]
    self.assertEqual(last_step["counts"], {
        "begin": 1, "after_create_session": 1, "before_run": 10,
        "after_run": 10, "end": 1})
    self.assertEqual(last_step["steps"], list(range(1, 11)))
    self.assertEqual(last_step["global_step"], 10)
    self.assertEqual(last_step["logged_times"], 4)  # Steps 0, 3, 6, 9.
    self.assertTrue(last_step["logged_loss_decreases"])
    self.assertEqual(last_step["checkpoint_steps"], [0, 4, 8, 10])
    self.assertEqual(result["num_steps"],
                     {"steps": [11, 12, 13, 14, 15], "global_step": 15})
    self.assertEqual(result["no_decrease_0_without_evals"],
                     {"runs": 5, "first": 1, "global_step": 5})
    self.assertEqual(result["no_decrease_1000"],
                     {"runs": 7, "first": 6, "global_step": 12})
    self.assertEqual(result["no_decrease_0"],
                     {"runs": 1, "first": 13, "global_step": 13})
    self.assertEqual(result["higher_than_minus_1"],
                     {"runs": 1, "first": 14, "global_step": 14})
    self.assertEqual(result["higher_than_1e9"],
                     {"runs": 6, "first": 15, "global_step": 20})


class ExportersTest(_ProbeTestCase):

  def test_latest_best_final_exporters(self):
    result = self._probe(_EXPORTERS_PROBE)
    self.assertEqual(result["eval_global_step"], 30)
    self.assertEqual(result["checkpoint_steps"], [0, 10, 20, 30])
    self.assertEqual(result["export_result_exporters"],
                     ["best", "final", "latest"])
    self.assertTrue(result["predict_close_to_line"])
    for name, count in (("latest", 2), ("best", 1), ("final", 1)):
      self.assertEqual(result[name], {
          "count": count, "complete": True, "signature_outputs": ["y"],
          "matches_predict": True}, name)


class CannedEstimatorsTest(_ProbeTestCase):

  def test_train_evaluate_predict_export(self):
    result = self._probe(_CANNED_PROBE)
    classifier_metrics = [
        "accuracy", "accuracy_baseline", "auc", "auc_precision_recall",
        "average_loss", "global_step", "label/mean", "loss", "precision",
        "prediction/mean", "recall"]
    classifier_outputs = ["all_class_ids", "all_classes", "class_ids",
                          "classes", "logistic", "logits", "probabilities"]
    classifier = {
        "global_step": 3, "metric_keys": classifier_metrics,
        "prediction_keys": classifier_outputs, "predictions": 4,
        "signatures": ["classification", "predict", "regression",
                       "serving_default"],
        "predict_outputs": classifier_outputs,
        "serving_default_inputs": ["inputs"],
        "serving_default_outputs": ["classes", "scores"],
        "export_matches_predict": True}
    for name in ("v1_dnn_classifier", "dnn_classifier",
                 "dnn_linear_combined_classifier", "baseline_classifier"):
      self.assertEqual(result[name], classifier, name)
    self.assertEqual(result["linear_regressor"], {
        "global_step": 3,
        "metric_keys": ["average_loss", "global_step", "label/mean", "loss",
                        "prediction/mean"],
        "prediction_keys": ["predictions"], "predictions": 4,
        "signatures": ["predict", "regression", "serving_default"],
        "predict_outputs": ["predictions"],
        "serving_default_inputs": ["inputs"],
        "serving_default_outputs": ["outputs"],
        "export_matches_predict": True})


class LegacyLayersTest(_ProbeTestCase):

  def test_compat_v1_layers_with_legacy_keras(self):
    # TF 2.15's tf.compat.v1.layers need no flag (its Keras is Keras 2), and
    # there the flag fails without tf_keras, which .venv/legacy lacks: on
    # TF 2.15, and for the reference, the probe runs without it.
    result = self._probe(
        _LEGACY_LAYERS_PROBE,
        env={} if _IS_TF_2_15 else {"TF_USE_LEGACY_KERAS": "1"},
        reference_env={})
    self.assertEqual(result, {"global_step": 3,
                              "variables": ["dense/bias", "dense/kernel"],
                              "prediction_shape": [2, 1]})

  def test_compat_v1_layers_without_flag(self):
    # Differs from TF 2.15 by design (Keras 3), so no reference run.
    process = self._start(sys.executable, _LAYERS_WITHOUT_FLAG_PROBE, _env())
    result = self._finish(process, "probe (TF %s)" % tf.__version__)
    if _IS_TF_2_15:
      self.assertEqual(result, {"available": True, "error": None})
    else:
      self.assertFalse(result["available"])
      self.assertIn("TF_USE_LEGACY_KERAS=1", result["error"])


if __name__ == "__main__":
  absltest.main()
