"""Tests of hub_tf1.convert and `python -m hub_tf1 convert`.

Rules: each fixture (and each tag set its `apply` checks use) is converted
from a copy of the module that is deleted before the SavedModel is loaded;
the SavedModel is then loaded and called in one subprocess that cannot
import hub_tf1 (PYTHONPATH unset, cwd outside the repo, and an import hook
that fails the run if anything imports hub_tf1 or tests).  Its serving
signatures and `__call__` get the fixtures' own `apply` inputs, and what
they return is compared with `hub_tf1.load(...)` in this process, with the
fixture's tolerances.  Bad inputs must raise and leave nothing behind.
"""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from hub_tf1.tf2 import convert as convert_lib
from hub_tf1.tf2 import graph_rewrite
from hub_tf1.tf2 import loading
from tests import tf2_fixtures_lib

check_fixtures = tf2_fixtures_lib.check_fixtures

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SUPPORTED = tf2_fixtures_lib.fixtures_with("apply")
_BROKEN = [n for n in sorted(os.listdir(tf2_fixtures_lib.MODULES))
           if n.startswith("broken_") and
           os.path.isdir(os.path.join(tf2_fixtures_lib.MODULES, n))]

# Runs in the subprocess: argv[1] the jobs pickle, argv[2] the results one.
_LOADER = r'''
import importlib.abc, pickle, sys

class _Refuse(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("hub_tf1", "tests", "estimator_integration"):
      raise ImportError("the SavedModel imported %s" % name)
    return None

sys.meta_path.insert(0, _Refuse())
import numpy as np
import tensorflow as tf

def value(kind, arrays):
  if kind == "dense":
    return tf.constant(arrays[0])
  if kind == "sparse":
    return tf.SparseTensor(*[tf.constant(a) for a in arrays])
  return tf.RaggedTensor.from_nested_row_splits(
      tf.constant(arrays[0]), [tf.constant(a) for a in arrays[1:]])

def flat(v):
  return [c.numpy() for c in tf.nest.flatten(v, expand_composites=True)]

with open(sys.argv[1], "rb") as f:
  jobs = pickle.load(f)
results = {}
for job_id, job in sorted(jobs.items()):
  m = tf.saved_model.load(job["export_dir"])
  out = {"signatures": sorted(m.signatures),
         "variables": [v.numpy() for v in m.variables],
         "trainable": [v.name for v in m.trainable_variables],
         "all": [v.name for v in m.variables],
         "losses": [f().numpy() for f in m.regularization_losses],
         "has_call": hasattr(m, "__call__"), "serving": [], "call": {}}
  for call in job["calls"]:
    fn = m.signatures[call["signature"]]
    out["serving"].append({k: v.numpy() for k, v in fn(**{
        k: tf.constant(a) for k, a in call["flat_inputs"].items()}).items()})
  for training in (False, True):
    out["call"][training] = []
    for call in job["calls"]:
      if not call["call"]:
        continue
      args = {k: value(*e) for k, e in call["inputs"].items()}
      if len(args) == 1:
        args = next(iter(args.values()))
      out["call"][training].append(flat(m(args, training=training)))
  results[job_id] = out
with open(sys.argv[2], "wb") as f:
  pickle.dump(results, f)
'''


def _kind(value) -> str:
  if isinstance(value, tf.SparseTensor):
    return "sparse"
  if isinstance(value, tf.RaggedTensor):
    return "ragged"
  return "dense"


def _flat_numpy(value):
  return [c.numpy() for c in tf.nest.flatten(value, expand_composites=True)]


def _subprocess_env():
  env = dict(os.environ)
  env.pop("PYTHONPATH", None)
  return env


def _assert_close(test, expected, observed, rtol, atol, where):
  test.assertEqual(len(expected), len(observed), where)
  for i, (e, o) in enumerate(zip(expected, observed)):
    e, o = np.asarray(e), np.asarray(o)
    test.assertEqual(e.shape, o.shape, "%s[%d]" % (where, i))
    if e.dtype.kind in "OSU":
      test.assertEqual(e.tolist(), o.tolist(), "%s[%d]" % (where, i))
    else:
      np.testing.assert_allclose(o, e, rtol=rtol, atol=atol,
                                 err_msg="%s[%d]" % (where, i))


def _jobs():
  """(job id, fixture name, tags) for each fixture and tag set it applies."""
  jobs = []
  for name in _SUPPORTED:
    seen = []
    for check in tf2_fixtures_lib.read_fixture(name)["checks"]:
      if check["type"] != "apply":
        continue
      tags = frozenset(check_fixtures._tags_arg(check.get("tags")) or ())  # pylint: disable=protected-access
      if tags not in seen:
        seen.append(tags)
        # No glob characters: checkpoint paths are patterns.
        job_id = "-".join([name] + sorted(tags))
        jobs.append((job_id, name, tags))
  return jobs


class ConvertFixturesTest(parameterized.TestCase):
  """Converts every supported fixture once, loads all in one subprocess."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work = tempfile.mkdtemp()
    cls.jobs, cls.expected, cls.assets = {}, {}, {}
    for job_id, name, tags in _jobs():
      fixture = tf2_fixtures_lib.read_fixture(name)
      original = os.path.join(tf2_fixtures_lib.MODULES, fixture["module_dir"])
      copy = os.path.join(cls.work, "module_" + job_id)
      shutil.copytree(original, copy)
      export_dir = os.path.join(cls.work, "saved_" + job_id)
      convert_lib.convert(copy, export_dir, tags=tags)
      assets_dir = os.path.join(copy, "assets")
      cls.assets[job_id] = (sorted(os.listdir(assets_dir))
                            if os.path.isdir(assets_dir) else [])
      shutil.rmtree(copy)
      module = loading.load(original, tags=tags)
      expected = {
          "variables": [v.numpy() for v in module.variables],
          "n_trainable": len(module.trainable_variables),
          "losses": [float(f()) for f in module.regularization_losses_for(
              convert_lib._train_tags(module, tags))],  # pylint: disable=protected-access
          "signatures": sorted(module.spec.get_signature_names(tags)),
          "serving": [], "call": {False: [], True: []},
          "rtol": fixture.get("rtol", 1e-5), "atol": fixture.get("atol", 1e-5)}
      calls = []
      for check in fixture["checks"]:
        check_tags = frozenset(
            check_fixtures._tags_arg(check.get("tags")) or ())  # pylint: disable=protected-access
        if check["type"] != "apply" or check_tags != tags:
          continue
        for call in check["calls"]:
          signature = call.get("signature") or "default"
          args = tf2_fixtures_lib.call_inputs(module.spec, call, tags)
          infos = module.spec.get_input_info_dict(signature, tags)
          flat_inputs = {}
          for key, value in args.items():
            flat_inputs.update(zip(
                convert_lib.flat_names(key, infos[key].type_spec),
                _flat_numpy(value)))
          outputs = module.signatures[signature](**args)
          out_infos = module.spec.get_output_info_dict(signature, tags)
          flat_outputs = {}
          for key, value in outputs.items():
            flat_outputs.update(zip(
                convert_lib.flat_names(key, out_infos[key].type_spec),
                _flat_numpy(value)))
          expected["serving"].append(flat_outputs)
          has_call = (signature == "default" and "default" in out_infos)
          calls.append({"signature": signature, "flat_inputs": flat_inputs,
                        "inputs": {k: (_kind(v), _flat_numpy(v))
                                   for k, v in args.items()},
                        "call": has_call, "args": args})
      # __call__ in the order the subprocess makes the calls, on a fresh
      # load: the saved __call__ functions are not the serving ones, so
      # seeded random ops (dropout of a {train} variant) start afresh.
      module = loading.load(original, tags=tags)
      for training in (False, True):
        for call in calls:
          if call["call"]:
            args = call["args"]
            if len(args) == 1:
              args = next(iter(args.values()))
            expected["call"][training].append(
                _flat_numpy(module(args, training=training)))
      for call in calls:
        del call["args"]
      expected["has_call"] = (
          "default" in module.spec.get_signature_names(tags) and "default" in
          module.spec.get_output_info_dict("default", tags))
      cls.expected[job_id] = expected
      cls.jobs[job_id] = {"export_dir": export_dir, "calls": calls}
    jobs_file = os.path.join(cls.work, "jobs.pickle")
    results_file = os.path.join(cls.work, "results.pickle")
    with open(jobs_file, "wb") as f:
      pickle.dump(cls.jobs, f)
    script = os.path.join(cls.work, "load_saved_models.py")
    with open(script, "w") as f:
      f.write(_LOADER)
    cls.process = subprocess.run(
        [sys.executable, script, jobs_file, results_file], cwd=cls.work,
        env=_subprocess_env(), capture_output=True, text=True, timeout=900,
        check=False)
    cls.results = {}
    if cls.process.returncode == 0:
      with open(results_file, "rb") as f:
        cls.results = pickle.load(f)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work, ignore_errors=True)
    super().tearDownClass()

  def _result(self, job_id):
    self.assertEqual(self.process.returncode, 0, self.process.stderr[-3000:])
    return self.results[job_id]

  @parameterized.parameters(*[j[0] for j in _jobs()])
  def test_outputs_match_load(self, job_id):
    result, expected = self._result(job_id), self.expected[job_id]
    rtol, atol = expected["rtol"], expected["atol"]
    self.assertEqual(result["signatures"], expected["signatures"])
    self.assertEqual(result["has_call"], expected["has_call"])
    _assert_close(self, expected["variables"], result["variables"], rtol,
                  atol, job_id + " variables")
    self.assertLen(result["trainable"], expected["n_trainable"])
    _assert_close(self, expected["losses"], result["losses"], rtol, atol,
                  job_id + " regularization_losses")
    self.assertNotEmpty(result["serving"])
    for i, (e, o) in enumerate(zip(expected["serving"], result["serving"])):
      self.assertEqual(sorted(e), sorted(o), "%s call %d" % (job_id, i))
      for key in sorted(e):
        _assert_close(self, [e[key]], [o[key]], rtol, atol,
                      "%s serving call %d output %s" % (job_id, i, key))
    for training in (False, True):
      _assert_close(self, expected["call"][training],
                    result["call"][training], rtol, atol,
                    "%s __call__(training=%s)" % (job_id, training))

  @parameterized.parameters(*[j[0] for j in _jobs()])
  def test_assets_copied(self, job_id):
    assets_dir = os.path.join(self.jobs[job_id]["export_dir"], "assets")
    names = sorted(os.listdir(assets_dir)) if os.path.isdir(assets_dir) else []
    for name in self.assets[job_id]:
      self.assertIn(name, names, "%s: asset %s not copied" % (job_id, name))

  def test_no_temporary_directories_left(self):
    left = [n for n in os.listdir(self.work) if "partial-" in n]
    self.assertEqual(left, [])


class ConvertErrorsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.parent = self.create_tempdir().full_path
    self.export_dir = os.path.join(self.parent, "out")

  def _module(self, name):
    return os.path.join(tf2_fixtures_lib.MODULES, name)

  def assertNothingWritten(self):
    self.assertEqual(os.listdir(self.parent), [])

  def test_unknown_tags(self):
    with self.assertRaisesRegex(KeyError, "no graph with tags"):
      convert_lib.convert(self._module("multi_signature"), self.export_dir,
                          tags={"nope"})
    self.assertNothingWritten()

  @parameterized.parameters(*_BROKEN)
  def test_broken_module(self, name):
    with self.assertRaises(Exception) as caught:
      convert_lib.convert(self._module(name), self.export_dir)
    self.assertNotIsInstance(caught.exception, AssertionError)
    self.assertIn(name, str(caught.exception))  # Names the module.
    self.assertNothingWritten()

  def test_existing_export_dir(self):
    os.makedirs(self.export_dir)
    with open(os.path.join(self.export_dir, "keep.txt"), "w") as f:
      f.write("mine")
    with self.assertRaisesRegex(tf.errors.AlreadyExistsError, "out"):
      convert_lib.convert(self._module("text_embedding_tokens"),
                          self.export_dir)
    self.assertEqual(os.listdir(self.parent), ["out"])
    self.assertEqual(os.listdir(self.export_dir), ["keep.txt"])

  def test_existing_file(self):
    with open(self.export_dir, "w") as f:
      f.write("mine")
    with self.assertRaises(tf.errors.AlreadyExistsError):
      convert_lib.convert(self._module("text_embedding_tokens"),
                          self.export_dir)
    self.assertEqual(os.listdir(self.parent), ["out"])

  def test_failure_while_saving_leaves_nothing(self):
    with mock.patch.object(tf.saved_model, "save",
                           side_effect=RuntimeError("disk full")):
      with self.assertRaisesRegex(RuntimeError, "disk full"):
        convert_lib.convert(self._module("text_embedding_tokens"),
                            self.export_dir)
    self.assertNothingWritten()

  def test_flat_names(self):
    self.assertEqual(
        convert_lib.flat_names("x", tf.SparseTensorSpec([None, 3],
                                                        tf.string)),
        ["x_indices", "x_values", "x_dense_shape"])
    self.assertEqual(
        convert_lib.flat_names("x", tf.RaggedTensorSpec([None, None, None],
                                                        tf.int64, 2)),
        ["x_flat_values", "x_row_splits_0", "x_row_splits_1"])
    self.assertEqual(convert_lib.flat_names("x", tf.TensorSpec([2])), ["x"])


class ConvertCommandTest(absltest.TestCase):

  def _run(self, *args):
    env = dict(os.environ, PYTHONPATH=_REPO)
    return subprocess.run([sys.executable, "-m", "hub_tf1", "convert"] +
                          list(args), cwd=_REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)

  def test_convert_into_empty_dir(self):
    export_dir = self.create_tempdir().full_path  # Exists, empty: allowed.
    process = self._run(
        os.path.join(tf2_fixtures_lib.MODULES, "text_embedding_tokens"),
        export_dir)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertIn("converted", process.stdout)
    self.assertTrue(os.path.exists(os.path.join(export_dir,
                                                "saved_model.pb")))
    self.assertIn("vocab.txt", os.listdir(os.path.join(export_dir, "assets")))
    reloaded = tf.saved_model.load(export_dir)
    self.assertIn("default", reloaded.signatures)

  def test_error_exit_code(self):
    parent = self.create_tempdir().full_path
    process = self._run(
        os.path.join(tf2_fixtures_lib.MODULES, "text_embedding_tokens"),
        os.path.join(parent, "out"), "--tags", "nope")
    self.assertEqual(process.returncode, 2, process.stdout)
    self.assertIn("cannot convert module", process.stderr)
    self.assertIn("nope", process.stderr)
    self.assertEqual(os.listdir(parent), [])


if __name__ == "__main__":
  absltest.main()
