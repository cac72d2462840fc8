"""Parameter servers that cannot read the module's files (tensorflow/hub#48).

A real cluster on 127.0.0.1: 1 chief + 1 worker + 2 ps + evaluator, the
text-classification job of examples/text_classification with a module served
over HTTP.  Every task resolves the handle into a download cache of its own;
the ps tasks run as another user (`nobody`) who cannot read the chief's
cache (mode 0750, group root), as on machines with disks of their own, while
the model_dir is writable by all (ps tasks write their checkpoint shards).

* A control shows the denial is real: `nobody` cannot open the module's
  checkpoint index in the chief's cache, and the same job run with
  tensorflow_hub 0.15 (.venv/ref) fails.
* With hub_tf1 the custom model_fn job (hub.Module(trainable=True,
  tags={"train"}) + LatestModuleExporter) and the canned DNNClassifier over
  text_embedding_column train, evaluate and export; the module's variables
  are on the ps tasks and held the module's weights at step 0.

Needs root (to start processes as another user); skipped otherwise.  The
test adds the others-may-traverse bit (o+x, not read) to the directories
above the interpreter, the repository and its scratch directory that lack it
(e.g. /root, a mktemp -d checkout), and puts their modes back afterwards.
"""

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from typing import Dict, List, Sequence, Tuple

from absl import logging
from absl.testing import absltest
import numpy as np
import tensorflow as tf

from examples.estimator_demo import model as demo_model
import hub_tf1
from tests import testing_http_server
from tools import local_cluster as cluster

_SOURCE_REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_JOB = os.path.join(_SOURCE_REPO, "examples", "text_classification", "job.py")
_REF_PYTHON = os.path.join(_SOURCE_REPO, ".venv", "ref", "bin", "python")
_HUB_IMPORT = "import hub_tf1 as hub  # was: import tensorflow_hub as hub\n"
_ORIGINAL_IMPORT = "import tensorflow_hub as hub\n"
_PS_USER = "nobody"
_MODULE_SCOPE = "module"
_STEPS = 200
_TIMEOUT_SECS = 420


def _ancestors(path: str) -> List[str]:
  path = os.path.realpath(path)
  found = []
  while True:
    found.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      return found
    path = parent


class _Traversal(object):
  """Adds o+x where needed on the way to some paths; undoes it."""

  def __init__(self):
    self._changed: List[Tuple[str, int]] = []

  def grant(self, paths: Sequence[str]) -> None:
    for path in paths:
      for directory in _ancestors(path):
        if not os.path.isdir(directory):
          continue
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        if not mode & stat.S_IXOTH:
          os.chmod(directory, mode | stat.S_IXOTH)
          self._changed.append((directory, mode))

  def undo(self) -> None:
    for directory, mode in reversed(self._changed):
      os.chmod(directory, mode)
    self._changed = []


class UnreadableModuleClusterTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if os.geteuid() != 0:
      raise absltest.SkipTest("needs root to run the ps tasks as %s" %
                              _PS_USER)
    ps = pwd.getpwnam(_PS_USER)
    cls.ps_ids = (ps.pw_uid, ps.pw_gid)
    cls.traversal = _Traversal()
    cls.work = tempfile.mkdtemp(prefix="hub_tf1_ps_unreadable_", dir="/tmp")
    os.chmod(cls.work, 0o755)
    cls.traversal.grant([sys.executable, _SOURCE_REPO, cls.work,
                         os.path.dirname(tf.__file__)])
    cls.main_cache = os.path.join(cls.work, "cache_main")
    os.makedirs(cls.main_cache)
    os.chmod(cls.main_cache, 0o750)  # root:root; nobody is not in group root.
    # The module, served as a tarball; then nobody may read only what the
    # ps tasks download themselves.
    source = os.path.join(cls.work, "source", "module")
    cls.run_local([sys.executable, _JOB, "--mode=make_module",
                   "--module_dir=" + source])
    serve = os.path.join(cls.work, "serve")
    os.makedirs(serve)
    with tarfile.open(os.path.join(serve, "text.tar.gz"), "w:gz") as tar:
      for name in sorted(os.listdir(source)):
        tar.add(os.path.join(source, name), arcname=name)
    cls.original_values = cls.module_values(source)
    cls.server = testing_http_server.TestingHttpServer(serve).start()
    cls.handle = cls.server.url("/text.tar.gz")
    cls.ps_home = os.path.join(cls.work, "ps_home")
    cls.ps_cache = os.path.join(cls.ps_home, "cache")
    os.makedirs(cls.ps_cache)
    for directory in (cls.ps_home, cls.ps_cache):
      os.chown(directory, *cls.ps_ids)

  @classmethod
  def tearDownClass(cls):
    if hasattr(cls, "server"):
      cls.server.stop()
    if hasattr(cls, "traversal"):
      cls.traversal.undo()
    if hasattr(cls, "work"):
      shutil.rmtree(cls.work, ignore_errors=True)
    super().tearDownClass()

  @classmethod
  def env(cls, legacy_keras: bool = False,
          reference: bool = False) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS", "TF_CONFIG",
                        "TFHUB_CACHE_DIR")}
    if not reference:
      env["PYTHONPATH"] = _SOURCE_REPO
    if legacy_keras:
      env["TF_USE_LEGACY_KERAS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["TFHUB_CACHE_DIR"] = cls.main_cache
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return env

  @classmethod
  def run_local(cls, argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), env=cls.env(), capture_output=True,
                          text=True, timeout=_TIMEOUT_SECS, check=False)
    if done.returncode != 0:
      raise AssertionError("%s exited %d:\n%s" % (
          " ".join(argv), done.returncode, done.stderr[-4000:]))

  @staticmethod
  def module_values(module_dir: str) -> Dict[str, np.ndarray]:
    with tf.Graph().as_default():
      module = hub_tf1.Module(module_dir)
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        return {name: np.concatenate(session.run(
            list(var if isinstance(var, (list, tuple)) else [var])), axis=0)
                for name, var in module.variable_map.items()}

  def run_cluster(self, name: str, args: Sequence[str], python: str,
                  job: str, legacy_keras: bool = False,
                  reference: bool = False):
    model_dir = os.path.join(self.work, name)
    os.makedirs(model_dir)
    os.chmod(model_dir, 0o777)  # The ps tasks write checkpoint shards here.
    command = [python, job, "--module_dir=" + self.handle,
               "--model_dir=" + model_dir,
               "--max_steps=%d" % _STEPS,
               "--save_checkpoints_steps=%d" % _STEPS] + list(args)
    log_dir = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.work),
        name + "-logs")
    local = cluster.LocalCluster(
        command, num_workers=1, num_ps=2, evaluator=True,
        env=self.env(legacy_keras, reference), cwd=self.work,
        output=sys.stderr, echo_filter=r"Traceback|Error|denied|^\{",
        log_dir=log_dir,
        task_env={cluster.PS: {"TFHUB_CACHE_DIR": self.ps_cache,
                               "HOME": self.ps_home}},
        task_users={cluster.PS: self.ps_ids})
    self.addCleanup(local.stop)
    local.start()
    code = local.wait(_TIMEOUT_SECS)
    return code, local, model_dir

  def cached_module(self) -> str:
    """Where the chief's cache holds the module (resolved here, as root)."""
    with absltest.mock.patch.dict(os.environ,
                                  {"TFHUB_CACHE_DIR": self.main_cache}):
      return hub_tf1.resolving.resolve(self.handle)

  def test_denial_is_real(self):
    index = os.path.join(self.cached_module(), "variables",
                         "variables.index")
    self.assertTrue(os.path.exists(index))
    probe = subprocess.run(
        [sys.executable, "-c", "open(%r, 'rb').read(1)" % index],
        user=self.ps_ids[0], group=self.ps_ids[1], extra_groups=[],
        env={"PATH": os.environ.get("PATH", "")}, cwd=self.work,
        capture_output=True, text=True, timeout=120, check=False)
    self.assertNotEqual(probe.returncode, 0)
    self.assertIn("Permission denied", probe.stderr)

  def test_original_fails_on_ps(self):
    if not os.path.exists(_REF_PYTHON):
      self.skipTest("%s not found (tools/bootstrap.sh ref)" % _REF_PYTHON)
    with open(_JOB, encoding="utf-8") as f:
      source = f.read()
    job = os.path.join(self.work, "original_job.py")
    with open(job, "w", encoding="utf-8") as f:
      f.write(source.replace(_HUB_IMPORT, _ORIGINAL_IMPORT))
    code, local, _ = self.run_cluster("original_custom", ["--mode=custom"],
                                      _REF_PYTHON, job, reference=True)
    self.assertNotEqual(code, cluster.EXIT_OK)
    chief = "\n".join(local.lines(cluster.Task(cluster.CHIEF, 0)))
    # The ps task's RestoreV2 cannot open the chief's cache path.  The chief
    # reports it either as the ps task's error or as one received from its
    # peer (the ps task's gRPC address), depending on which call fails first.
    failure = re.search(r"(From /job:ps/replica:0/task:\d+:|Error received "
                        r"from peer)[^\n]{0,400}?\s*[^\n]{0,400}?(Unsuccessful "
                        r"TensorSliceReader constructor: Failed to find any "
                        r"matching files|Permission denied)", chief)
    self.assertIsNotNone(failure, chief[-3000:])

  def check_on_ps(self, model_dir: str) -> None:
    devices = demo_model.module_variable_devices(model_dir, _MODULE_SCOPE)
    self.assertNotEmpty(devices)
    for device in devices.values():
      self.assertStartsWith(device, "/job:ps/")
    # Step 0's checkpoint holds the module's weights.
    step0 = os.path.join(model_dir, "model.ckpt-0")
    self.assertTrue(tf.io.gfile.exists(step0 + ".index"),
                    tf.io.gfile.listdir(model_dir))
    for name, value in self.original_values.items():
      np.testing.assert_array_equal(
          tf.train.load_variable(step0, "%s/%s" % (_MODULE_SCOPE, name)),
          value)

  def test_custom_model_fn_fine_tunes_and_exports(self):
    # tf.compat.v1.layers in the model_fn: tf_keras under Keras 3.
    code, local, model_dir = self.run_cluster(
        "custom", ["--mode=custom"], sys.executable, _JOB,
        legacy_keras=not tf.__version__.startswith("2.15"))
    self.assertEqual(code, cluster.EXIT_OK,
                     "tasks %s failed" % (local.failed_tasks(),))
    self.check_on_ps(model_dir)
    base = os.path.join(model_dir, "export", "tf_hub")
    exports = sorted(n for n in tf.io.gfile.listdir(base) if n.isdigit())
    self.assertNotEmpty(exports)
    exported = self.module_values(os.path.join(base, exports[-1], "text"))
    for name, value in self.original_values.items():
      self.assertFalse(np.allclose(exported[name], value), name)

  def test_canned_dnn_classifier(self):
    code, local, model_dir = self.run_cluster(
        "canned", ["--mode=canned"], sys.executable, _JOB)
    self.assertEqual(code, cluster.EXIT_OK,
                     "tasks %s failed" % (local.failed_tasks(),))
    self.check_on_ps(model_dir)
    exports = os.path.join(model_dir, "export", "saved_model")
    self.assertNotEmpty(tf.io.gfile.listdir(exports))
    logging.info("canned exports: %s", tf.io.gfile.listdir(exports))


if __name__ == "__main__":
  absltest.main()
