"""The legacy text-classification job of examples/text_classification.

The job (examples/text_classification/job.py) is a tensorflow_hub 0.15 /
tf.estimator program whose only change is `import hub_tf1 as hub`.  Every
run here is a subprocess of `sys.executable` with PYTHONPATH=<repo root>:

* local: make_module, then the canned DNNClassifier over
  `hub.text_embedding_column` (under the TensorFlow's default Keras, i.e.
  Keras 3 on TF >= 2.16) and the custom model_fn fine-tuning
  `hub.Module(trainable=True, tags={"train"})` with LatestModuleExporter
  (with TF_USE_LEGACY_KERAS=1 on TF >= 2.16, which tf.compat.v1.layers needs);
  checks the global step, the accuracy on the separable data, the exports
  and that the exported module carries the fine-tuned weights;
* the original: with <repo>/.venv/ref (TF 2.15 + tensorflow_hub 0.15), a copy
  of the same file with the import put back to `import tensorflow_hub as hub`
  trains and exports too, and its canned run reaches the accuracy of ours;
* cluster: canned and custom as every task of a LocalCluster (chief, 1
  worker, 2 ps, evaluator on 127.0.0.1); checks the same plus the module's
  partitioned variables on the two ps tasks.

Under Bazel, the glob target //tests:text_classification_job_test runs the
local and reference parts and //tests:text_classification_job_cluster_test
(tag "cluster") the cluster part; under pytest everything runs.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
from absl.testing import absltest
import numpy as np
import tensorflow as tf

from examples.estimator_demo import model as demo_model
import hub_tf1
from tools import local_cluster as cluster

_HERE = os.path.dirname(os.path.abspath(__file__))
# Under Bazel the runfiles tree holds symlinks into the source tree; the
# example and .venv/ref are found next to the real test file when the
# runfiles lack them.
_REPO = os.path.dirname(_HERE)
_SOURCE_REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_JOB_RELPATH = os.path.join("examples", "text_classification", "job.py")
_JOB = next((os.path.join(root, _JOB_RELPATH) for root in (_REPO, _SOURCE_REPO)
             if os.path.exists(os.path.join(root, _JOB_RELPATH))),
            os.path.join(_REPO, _JOB_RELPATH))
_REF_PYTHON = os.path.join(_SOURCE_REPO, ".venv", "ref", "bin", "python")

_HUB_IMPORT = "import hub_tf1 as hub  # was: import tensorflow_hub as hub\n"
_ORIGINAL_IMPORT = "import tensorflow_hub as hub\n"

_KERAS3_DEFAULT = tuple(int(x) for x in tf.__version__.split(".")[:2]) >= (
    2, 16)

# Small runs; the canned model learns more slowly (the Estimator's Adagrad
# learning rate) than the fine-tuned custom one.
_CANNED_STEPS, _CUSTOM_STEPS = 600, 300
_CANNED_ARGS = ("--mode=canned", "--max_steps=%d" % _CANNED_STEPS,
                "--save_checkpoints_steps=%d" % _CANNED_STEPS)
_CUSTOM_ARGS = ("--mode=custom", "--max_steps=%d" % _CUSTOM_STEPS,
                "--save_checkpoints_steps=%d" % _CUSTOM_STEPS)
_CANNED_MIN_ACCURACY, _CANNED_MIN_AUC = 0.75, 0.95
_CUSTOM_MIN_ACCURACY = 0.9
_JOB_TIMEOUT_SECS = 300
_CLUSTER_TIMEOUT_SECS = 300
_MODULE_SCOPE = "module"  # Where both models put the module's variables.

# Which part a Bazel target runs (see the file docstring); None: all.
_BAZEL_TARGET = os.environ.get("TEST_TARGET")


def _skip_unless_part(test_case: absltest.TestCase, cluster_part: bool):
  if _BAZEL_TARGET is None:
    return
  is_cluster_target = _BAZEL_TARGET.endswith("_cluster_test")
  if cluster_part != is_cluster_target:
    test_case.skipTest(
        "runs in //tests:text_classification_job%s_test" %
        ("_cluster" if cluster_part else ""))


def _job_env(legacy_keras: bool, reference: bool = False) -> Dict[str, str]:
  """Environment for a job process."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS", "TF_CONFIG")}
  if not reference:  # The original must not see hub_tf1.
    env["PYTHONPATH"] = _REPO
  if legacy_keras:
    env["TF_USE_LEGACY_KERAS"] = "1"
  env["CUDA_VISIBLE_DEVICES"] = ""
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  return env


def _last_json(lines: Sequence[str]) -> Optional[Dict[str, Any]]:
  for line in reversed(lines):
    if line.startswith("{"):
      return json.loads(line)
  return None


def _module_values(module_dir: str) -> Dict[str, np.ndarray]:
  """Variables of a stored module (partitioned ones joined), via hub_tf1."""
  with tf.Graph().as_default():
    module = hub_tf1.Module(module_dir)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      values = {}
      for name, var in module.variable_map.items():
        parts = var if isinstance(var, (list, tuple)) else [var]
        values[name] = np.concatenate(session.run(list(parts)), axis=0)
  return values


def _checkpoint_step(model_dir: str) -> int:
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    raise AssertionError("no checkpoint in %s" % model_dir)
  return int(tf.train.load_variable(checkpoint, "global_step"))


def _exports(model_dir: str, exporter: str) -> List[str]:
  base = os.path.join(model_dir, "export", exporter)
  if not os.path.isdir(base):
    return []
  return [os.path.join(base, n) for n in sorted(os.listdir(base))
          if n.isdigit()]


def _serialized_examples(sentences: Sequence[str]) -> List[bytes]:
  return [tf.train.Example(features=tf.train.Features(feature={
      "sentence": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[s.encode("utf-8")]))})).SerializeToString()
          for s in sentences]


class _JobChecks(absltest.TestCase):
  """Runs the job and checks its results; subclasses say where it runs."""

  CLUSTER_PART = False
  root: str
  module_dir: str
  original_values: Dict[str, np.ndarray]

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    cls.module_dir = os.path.join(cls.root, "module")
    cls.make_module_result = None
    cls.original_values = None

  def setUp(self):
    super().setUp()
    _skip_unless_part(self, self.CLUSTER_PART)
    if self.make_module_result is None:
      type(self).make_module_result = self.run_job(
          [sys.executable, _JOB], ["--mode=make_module"],
          _job_env(legacy_keras=False))
      type(self).original_values = _module_values(self.module_dir)

  def run_job(self, command: Sequence[str], args: Sequence[str],
              env: Dict[str, str],
              module_dir: Optional[str] = None) -> Dict[str, Any]:
    """Runs the job in one process; returns its JSON result line."""
    argv = (list(command) + ["--module_dir=" + (module_dir or self.module_dir)]
            + list(args))
    logging.info("Running %s", " ".join(argv))
    done = subprocess.run(argv, env=env, cwd=self.root, capture_output=True,
                          text=True, timeout=_JOB_TIMEOUT_SECS, check=False)
    if done.returncode != 0:
      self.fail("%s exited %d:\n%s" % (" ".join(argv), done.returncode,
                                        done.stderr[-6000:]))
    result = _last_json(done.stdout.splitlines())
    self.assertIsNotNone(result, "no JSON line in:\n" + done.stdout[-2000:])
    return result

  # Steps past max_steps a run may end at: 0 in one process.  With
  # asynchronous trainers (chief and workers) others' steps land while one
  # sees max_steps and stops; 2 per trainer bounds what was seen (602 with
  # one worker).
  STEP_SLACK = 0

  def check_trained(self, result: Dict[str, Any], model_dir: str,
                    max_steps: int, min_accuracy: float) -> None:
    step = _checkpoint_step(model_dir)
    self.assertBetween(step, max_steps, max_steps + self.STEP_SLACK)
    self.assertEqual(result["global_step"], step)
    self.assertIsNotNone(result["eval"], "no evaluation in %s" % model_dir)
    self.assertEqual(result["eval"]["global_step"], step)
    self.assertGreaterEqual(result["eval"]["accuracy"], min_accuracy)

  def check_canned(self, result: Dict[str, Any], model_dir: str,
                   reference: bool = False) -> None:
    """Trained; the SavedModel export ranks clear sentences right.

    With hub_tf1 (not `reference`), the LatestModuleExporter also wrote the
    text column's module, holding the checkpoint's values.
    """
    self.check_trained(result, model_dir, _CANNED_STEPS,
                       _CANNED_MIN_ACCURACY)
    self.assertGreaterEqual(result["eval"]["auc"], _CANNED_MIN_AUC)
    exports = _exports(model_dir, "saved_model")
    self.assertNotEmpty(exports)
    module_exports = _exports(model_dir, "tf_hub")
    self.assertEqual(sorted(result["exports"]),
                     sorted(exports + module_exports))
    if reference:
      self.assertEmpty(module_exports)  # The original exports nothing here.
    else:
      self.assertNotEmpty(module_exports)
      column_module = os.path.join(module_exports[-1],
                                   "sentence_hub_module_embedding")
      values = _module_values(column_module)
      checkpoint = tf.train.latest_checkpoint(model_dir)
      for name, value in values.items():
        np.testing.assert_allclose(value, tf.train.load_variable(
            checkpoint, "%s/%s" % (_MODULE_SCOPE, name)))
    loaded = tf.saved_model.load(exports[-1])
    predict = loaded.signatures["predict"]
    positive = ["the film was superb and charming", "great great acting"]
    negative = ["a tedious and awful plot", "boring dreadful music"]
    outputs = predict(examples=tf.constant(_serialized_examples(
        positive + negative)))
    scores = outputs["probabilities"].numpy()[:, 1]
    self.assertEqual(scores.shape, (4,))
    # Ranking, not the 0.5 threshold, which a short run has not calibrated.
    self.assertGreater(scores[:2].min(), scores[2:].max(), scores)

  def check_custom(self, result: Dict[str, Any], model_dir: str) -> None:
    """Trained; the newest module export is the fine-tuned module."""
    self.check_trained(result, model_dir, _CUSTOM_STEPS,
                       _CUSTOM_MIN_ACCURACY)
    exports = _exports(model_dir, "tf_hub")
    self.assertNotEmpty(exports)
    self.assertEqual(sorted(result["exports"]), exports)
    exported = os.path.join(exports[-1], "text")
    self.assertEqual(hub_tf1.load_module_spec(exported).get_tags(),
                     [set(), {"train"}])
    values = _module_values(exported)
    self.assertEqual(sorted(values), sorted(self.original_values))
    for name, original in self.original_values.items():
      self.assertEqual(values[name].shape, original.shape)
      self.assertFalse(np.allclose(values[name], original),
                       "%s was not fine-tuned" % name)
      trained = tf.train.load_variable(tf.train.latest_checkpoint(model_dir),
                                       "%s/%s" % (_MODULE_SCOPE, name))
      np.testing.assert_allclose(values[name], trained, rtol=1e-6)


class LocalJobTest(_JobChecks):
  """One process per run: hub_tf1 here, tensorflow_hub 0.15 in .venv/ref."""

  _results: Dict[str, Dict[str, Any]] = {}

  def _run_cached(self, name: str, command: Sequence[str],
                  args: Sequence[str], env: Dict[str, str],
                  module_dir: Optional[str] = None):
    if name not in self._results:
      model_dir = os.path.join(self.root, name)
      self._results[name] = self.run_job(
          command, list(args) + ["--model_dir=" + model_dir], env,
          module_dir)
    return self._results[name], os.path.join(self.root, name)

  def _canned(self):
    return self._run_cached("canned", [sys.executable, _JOB], _CANNED_ARGS,
                            _job_env(legacy_keras=False))

  def _reference_job(self) -> str:
    """The job as written for tensorflow_hub; makes its module once.

    Returns:
      The path of the job's copy with the original import.
    """
    if not os.path.exists(_REF_PYTHON):
      self.skipTest("%s not found (tools/bootstrap.sh ref)" % _REF_PYTHON)
    with open(_JOB, encoding="utf-8") as f:
      source = f.read()
    self.assertEqual(source.count(_HUB_IMPORT), 1)
    original = source.replace(_HUB_IMPORT, _ORIGINAL_IMPORT)
    self.assertNotIn("hub_tf1", original)
    path = os.path.join(self.root, "original_job.py")
    if not os.path.exists(path):
      with open(path, "w", encoding="utf-8") as f:
        f.write(original)
      self._run_cached("ref_make_module", [_REF_PYTHON, path],
                       ["--mode=make_module"], _job_env(False, True),
                       self.ref_module_dir)
      # The original builds the same module (same initial values).
      ref_values = _module_values(self.ref_module_dir)
      self.assertEqual(sorted(ref_values), sorted(self.original_values))
      for name, value in ref_values.items():
        np.testing.assert_array_equal(value, self.original_values[name])
    return path

  @property
  def ref_module_dir(self) -> str:
    return os.path.join(self.root, "ref_module")

  def test_make_module(self):
    self.assertEqual(self.make_module_result["tags"], [[], ["train"]])
    spec = hub_tf1.load_module_spec(self.module_dir)
    self.assertEqual(spec.get_tags(), [set(), {"train"}])
    self.assertEqual(sorted(self.original_values), ["embeddings"])
    with tf.Graph().as_default():
      parts = hub_tf1.Module(self.module_dir).variable_map["embeddings"]
      self.assertLen(parts, 2)  # --embedding_partitions default.
    with open(os.path.join(self.module_dir, "assets", "vocab.txt"),
              encoding="utf-8") as f:
      self.assertIn("superb\n", f.read())

  def test_canned_dnn_classifier_under_default_keras(self):
    result, model_dir = self._canned()
    self.check_canned(result, model_dir)
    if _KERAS3_DEFAULT:
      self.assertStartsWith(result["keras"] or "", "3.")

  def test_custom_model_fn_fine_tunes_and_exports(self):
    result, model_dir = self._run_cached(
        "custom", [sys.executable, _JOB], _CUSTOM_ARGS,
        _job_env(legacy_keras=_KERAS3_DEFAULT))
    self.check_custom(result, model_dir)
    if _KERAS3_DEFAULT:  # tf.keras was tf-keras (Keras 2) in the job.
      self.assertStartsWith(result["keras_module"], "tf_keras")

  def test_custom_model_fn_under_keras3_names_the_fix(self):
    if not _KERAS3_DEFAULT:
      self.skipTest("tf.keras is Keras 2 on TF %s" % tf.__version__)
    argv = [sys.executable, _JOB, "--module_dir=" + self.module_dir,
            "--model_dir=" + os.path.join(self.root, "custom_keras3"),
            "--mode=custom", "--max_steps=1"]
    done = subprocess.run(argv, env=_job_env(legacy_keras=False),
                          capture_output=True, text=True,
                          timeout=_JOB_TIMEOUT_SECS, check=False)
    self.assertNotEqual(done.returncode, 0)
    self.assertIn("AttributeError", done.stderr)
    self.assertIn("TF_USE_LEGACY_KERAS=1", done.stderr)

  def test_original_tensorflow_hub_canned(self):
    job = self._reference_job()
    result, model_dir = self._run_cached(
        "ref_canned", [_REF_PYTHON, job], _CANNED_ARGS,
        _job_env(legacy_keras=False, reference=True), self.ref_module_dir)
    self.assertTrue(result["tensorflow"].startswith("2.15"))
    self.check_canned(result, model_dir, reference=True)
    # Same data, seeds and initial module: hub_tf1's run ends where the
    # original's does (up to float differences between TF versions).
    ours, our_model_dir = self._canned()
    self.assertAlmostEqual(ours["eval"]["accuracy"],
                           result["eval"]["accuracy"], delta=0.02)
    # Whether the DNNClassifier fine-tuned the module through
    # text_embedding_column(trainable=True): the same answer as the original.
    def tuned(directory):
      final = tf.train.load_variable(tf.train.latest_checkpoint(directory),
                                     _MODULE_SCOPE + "/embeddings")
      return not np.allclose(final, self.original_values["embeddings"])
    self.assertEqual(tuned(our_model_dir), tuned(model_dir))

  def test_original_tensorflow_hub_custom(self):
    job = self._reference_job()
    result, model_dir = self._run_cached(
        "ref_custom", [_REF_PYTHON, job], _CUSTOM_ARGS,
        _job_env(legacy_keras=False, reference=True), self.ref_module_dir)
    self.assertTrue(result["tensorflow"].startswith("2.15"))
    self.check_custom(result, model_dir)


class ClusterJobTest(_JobChecks):
  """Every task of a 1 chief + 1 worker + 2 ps + evaluator cluster."""

  CLUSTER_PART = True
  NUM_WORKERS = 1  # Besides the chief.
  STEP_SLACK = 2 * (NUM_WORKERS + 1)

  def _run_cluster(self, name: str, args: Sequence[str],
                   legacy_keras: bool, module_scope: str = _MODULE_SCOPE):
    model_dir = os.path.join(self.root, name)
    command = ([sys.executable, _JOB, "--module_dir=" + self.module_dir,
                "--model_dir=" + model_dir] + list(args))
    log_dir = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.root),
        name + "-logs")
    local = cluster.LocalCluster(
        command, num_workers=self.NUM_WORKERS, num_ps=2, evaluator=True,
        env=_job_env(legacy_keras), output=sys.stderr,
        echo_filter=r"Traceback|Error|^\{", log_dir=log_dir)
    self.addCleanup(local.stop)
    local.start()
    code = local.wait(_CLUSTER_TIMEOUT_SECS)
    self.assertEqual(code, cluster.EXIT_OK,
                     "cluster job failed (exit %d), tasks %s; logs in %s" %
                     (code, local.failed_tasks(), log_dir))
    result = _last_json(local.lines(cluster.Task(cluster.EVALUATOR, 0)))
    self.assertIsNotNone(result, "the evaluator printed no result")
    self.assertEqual(result["task"], "evaluator")
    self.assertIsNotNone(_last_json(local.lines(cluster.Task(cluster.CHIEF,
                                                             0))))
    # The module's variables (and optimizer slots next to them, custom
    # mode) are on the parameter servers, one embedding part per ps task.
    devices = demo_model.module_variable_devices(model_dir, module_scope)
    parts = {name: device for name, device in devices.items()
             if name.count("/") == 1}
    self.assertEqual(sorted(parts), ["embeddings/part_0", "embeddings/part_1"])
    for device in devices.values():
      self.assertStartsWith(device, "/job:ps/")
    self.assertLen(set(parts.values()), 2, parts)
    return result, model_dir

  def test_canned_on_cluster(self):
    self.check_canned(*self._run_cluster("canned", _CANNED_ARGS,
                                         legacy_keras=False))

  def test_other_canned_estimators_on_cluster(self):
    # The exporter finds the column modules of DNNLinearCombinedClassifier
    # (the text column in both parts: two module instances) and of
    # LinearClassifier, on the cluster; each export holds the values of one
    # instance in the final checkpoint.
    steps = ("--max_steps=100", "--save_checkpoints_steps=100")
    for estimator, scope, instances in (
        ("dnn_linear_combined", _MODULE_SCOPE, 2),
        ("linear", "linear/linear_model/sentence_hub_module_embedding/module",
         1)):
      with self.subTest(estimator):
        result, model_dir = self._run_cluster(
            estimator, ("--mode=canned", "--canned_estimator=" + estimator)
            + steps, legacy_keras=False, module_scope=scope)
        self.assertEqual(result["eval"]["global_step"], 100)
        exports = _exports(model_dir, "tf_hub")
        self.assertNotEmpty(exports)
        checkpoint = tf.train.latest_checkpoint(model_dir)
        prefixes = [name[:-len("embeddings")] for name, _ in
                    tf.train.list_variables(checkpoint)
                    if name.endswith("module/embeddings")]
        self.assertLen(prefixes, instances)
        names = sorted(tf.io.gfile.listdir(exports[-1]))
        self.assertLen(names, instances)
        for name in names:
          values = _module_values(os.path.join(exports[-1], name))
          matches = [p for p in prefixes if all(np.allclose(
              v, tf.train.load_variable(checkpoint, p + k))
                                               for k, v in values.items())]
          self.assertNotEmpty(matches, "%s matches no module of %s" % (
              name, prefixes))

  def test_custom_on_cluster(self):
    self.check_custom(*self._run_cluster("custom", _CUSTOM_ARGS,
                                         legacy_keras=_KERAS3_DEFAULT))


if __name__ == "__main__":
  absltest.main()
