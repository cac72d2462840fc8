"""Tests of broken modules and bad calls.

Each broken module is made from a freshly exported good one by damaging one
file (and, where tensorflow_hub 0.15 wrote one, the matching reference
fixture is checked too).  Also: an old module written by TF 1.12 still
loads.
"""

import os
import tarfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import hub_tf1 as hub
from tests import testing_modules as tm

_REF_MODULES = os.path.join(tm.FIXTURES_DIR, "ref_modules")


def _export_good_module(test_case):
  """A fresh module (linear, w = ones, b = zeros) in a temp dir."""
  path = os.path.join(tm.make_temp_dir(test_case), "module")
  with tf.Graph().as_default():
    m = hub.Module(hub.create_module_spec(tm.linear_module_fn))
    with tf.compat.v1.Session() as session:
      tm.run_init(session)
      session.run([m.variable_map["w"].assign(tf.ones([2, 3])),
                   m.variable_map["b"].assign(tf.zeros([3]))])
      m.export(path, session)
  return path


def _write(path, data):
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _read(path):
  with tf.io.gfile.GFile(path, "rb") as f:
    return f.read()


def _module_def_bytes(format_value, features=()):
  """A ModuleDef encoded by hand (field 1 varint, field 2 strings)."""
  data = b"" if format_value == 0 else bytes([0x08, format_value])
  for feature in features:
    encoded = feature.encode("utf-8")
    data += bytes([0x12, len(encoded)]) + encoded
  return data


def _run_pipeline(path, inputs=((1.0, 2.0),)):
  """Loads, instantiates, initialises and runs the module at `path`."""
  with tf.Graph().as_default():
    y = hub.Module(path)(np.array(inputs, np.float32))
    with tf.compat.v1.Session() as session:
      tm.run_init(session)
      return session.run(y)


class BrokenModuleTest(tf.test.TestCase):

  def test_good_module_works(self):
    # The baseline the damaged copies below start from.
    path = _export_good_module(self)
    self.assertAllClose(_run_pipeline(path), [[3.0, 3.0, 3.0]])

  def test_missing_module_def(self):
    path = _export_good_module(self)
    tf.io.gfile.remove(os.path.join(path, "tfhub_module.pb"))
    with self.assertRaisesRegex(tf.errors.NotFoundError, "tfhub_module.pb"):
      hub.load_module_spec(path)
    with tf.Graph().as_default():
      with self.assertRaisesRegex(tf.errors.NotFoundError, "tfhub_module.pb"):
        hub.Module(path)

  def test_missing_module_def_fixture(self):
    with self.assertRaisesRegex(tf.errors.NotFoundError, "tfhub_module.pb"):
      hub.load_module_spec(os.path.join(_REF_MODULES,
                                        "broken_missing_module_pb"))

  def test_plain_saved_model_is_not_a_module(self):
    path = os.path.join(tm.make_temp_dir(self), "saved_model")
    with tf.Graph().as_default():
      x = tf.compat.v1.placeholder(tf.float32, [None])
      with tf.compat.v1.Session() as session:
        builder = tf.compat.v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(session, ["serve"])
        builder.save()
      del x
    with self.assertRaisesRegex(tf.errors.NotFoundError, "tfhub_module.pb"):
      hub.load_module_spec(path)

  def test_truncated_saved_model(self):
    path = _export_good_module(self)
    saved_model_path = os.path.join(path, "saved_model.pb")
    data = _read(saved_model_path)
    _write(saved_model_path, data[:len(data) // 3])
    with self.assertRaisesRegex(IOError, "saved_model.pb"):
      hub.load_module_spec(path)

  def test_corrupt_saved_model_fixture(self):
    with self.assertRaisesRegex(OSError, "saved_model.pb"):
      hub.load_module_spec(os.path.join(_REF_MODULES,
                                        "broken_corrupt_saved_model"))

  def test_missing_saved_model(self):
    path = _export_good_module(self)
    tf.io.gfile.remove(os.path.join(path, "saved_model.pb"))
    with self.assertRaisesRegex(tf.errors.NotFoundError, "saved_model.pb"):
      hub.load_module_spec(path)

  def _assert_fails_by_initialisation(self, path, pattern,
                                      inputs=((1.0, 2.0),)):
    """Loading may succeed, running the initializers must not."""
    with tf.Graph().as_default():
      with self.assertRaisesRegex(tf.errors.NotFoundError, pattern):
        m = hub.Module(path)
        m(np.array(inputs, np.float32))
        with tf.compat.v1.Session() as session:
          tm.run_init(session)

  def test_missing_variables_data(self):
    path = _export_good_module(self)
    variables_dir = os.path.join(path, "variables")
    data_files = [f for f in tf.io.gfile.listdir(variables_dir)
                  if ".data-" in f]
    self.assertNotEmpty(data_files)
    for name in data_files:
      tf.io.gfile.remove(os.path.join(variables_dir, name))
    self._assert_fails_by_initialisation(path, "variables.data")

  def test_missing_variables_data_fixture(self):
    self._assert_fails_by_initialisation(
        os.path.join(_REF_MODULES, "broken_missing_variables_data"),
        "variables.data-00000-of-00001", inputs=(1.0, 2.0))

  def test_missing_variables_dir(self):
    path = _export_good_module(self)
    tf.io.gfile.rmtree(os.path.join(path, "variables"))
    self._assert_fails_by_initialisation(path, "variables")

  def test_unknown_required_feature(self):
    path = _export_good_module(self)
    _write(os.path.join(path, "tfhub_module.pb"),
           _module_def_bytes(3, ["time_travel"]))
    with self.assertRaisesRegex(ValueError, "time_travel"):
      hub.load_module_spec(path)
    with tf.Graph().as_default():
      with self.assertRaisesRegex(ValueError, "time_travel"):
        hub.Module(path)

  def test_unknown_required_feature_fixture(self):
    with self.assertRaisesRegex(ValueError, "teleportation"):
      hub.load_module_spec(os.path.join(_REF_MODULES,
                                        "broken_unknown_feature"))

  def test_unspecified_format(self):
    path = _export_good_module(self)
    _write(os.path.join(path, "tfhub_module.pb"), _module_def_bytes(0))
    with self.assertRaisesRegex(ValueError, "format"):
      hub.load_module_spec(path)
    with self.assertRaisesRegex(ValueError, "format"):
      hub.load_module_spec(os.path.join(_REF_MODULES,
                                        "broken_unspecified_format"))

  def test_future_format(self):
    path = _export_good_module(self)
    _write(os.path.join(path, "tfhub_module.pb"), _module_def_bytes(4))
    with self.assertRaisesRegex(ValueError, "format.*4"):
      hub.load_module_spec(path)

  def test_non_existent_path(self):
    path = os.path.join(tm.make_temp_dir(self), "no", "such", "module")
    with self.assertRaisesRegex(IOError, "does not exist"):
      hub.load_module_spec(path)
    with tf.Graph().as_default():
      with self.assertRaisesRegex(IOError, "does not exist"):
        hub.Module(path)

  def _rewrite_saved_model(self, path, edit):
    saved_model_path = os.path.join(path, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel.FromString(
        _read(saved_model_path))
    edit(saved_model)
    _write(saved_model_path, saved_model.SerializeToString())

  def test_repeated_tags_on_load(self):
    path = _export_good_module(self)

    def duplicate(saved_model):
      saved_model.meta_graphs.add().CopyFrom(saved_model.meta_graphs[0])

    self._rewrite_saved_model(path, duplicate)
    with self.assertRaisesRegex(ValueError, "used repeatedly"):
      hub.load_module_spec(path)

  def test_unsupported_collection_on_load(self):
    path = _export_good_module(self)

    def add_collection(saved_model):
      saved_model.meta_graphs[0].collection_def[
          "summaries"].node_list.value.append("add:0")

    self._rewrite_saved_model(path, add_collection)
    with self.assertRaisesRegex(ValueError, "summaries"):
      hub.load_module_spec(path)

  def test_module_written_by_tf_1_12(self):
    tmp = tm.make_temp_dir(self)
    with tarfile.open(os.path.join(tm.FIXTURES_DIR, "external",
                                   "half_plus_two_v1.tar.gz")) as tar:
      if hasattr(tarfile, "data_filter"):
        tar.extractall(tmp, filter="data")  # A trusted test file.
      else:
        tar.extractall(tmp)
    candidates = [root for root, _, files in tf.io.gfile.walk(tmp)
                  if "tfhub_module.pb" in files]
    self.assertLen(candidates, 1)
    spec = hub.load_module_spec(candidates[0])
    self.assertEqual(spec.get_signature_names(), ["default"])
    with tf.Graph().as_default():
      m = hub.Module(candidates[0])
      self.assertLen(m.variables, 2)
      y = m([1.0, 2.0, 3.0])
      with tf.compat.v1.Session() as session:
        tm.run_init(session)
        self.assertAllClose(session.run(y), [2.5, 3.0, 3.5])
    with hub.eval_function_for_module(candidates[0]) as f:
      self.assertAllClose(f([[4.0], [-4.0]]), [[4.0], [0.0]])


class BadCallTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.spec = hub.create_module_spec(tm.linear_module_fn)

  def test_unknown_signature(self):
    for call in (lambda: self.spec.get_input_info_dict("nope"),
                 lambda: self.spec.get_output_info_dict("nope")):
      with self.assertRaisesRegex(ValueError, "nope"):
        call()
    with tf.Graph().as_default():
      m = hub.Module(self.spec)
      with self.assertRaisesRegex(ValueError, "nope"):
        m([[1.0, 2.0]], signature="nope")
      with self.assertRaisesRegex(ValueError, "nope"):
        m.get_output_info_dict("nope")

  def test_unknown_tags_on_spec(self):
    with self.assertRaisesRegex(KeyError, "serve"):
      self.spec.get_signature_names(tags={"serve"})
    with self.assertRaisesRegex(KeyError, "serve"):
      self.spec.get_input_info_dict(tags={"serve"})

  def test_module_needs_graph_mode(self):
    self.assertTrue(tf.executing_eagerly())
    with self.assertRaises(RuntimeError):
      hub.Module(self.spec)

  def test_not_a_spec(self):
    with tf.Graph().as_default():
      with self.assertRaises(ValueError):
        hub.Module(123)

  def test_eval_function_bad_calls(self):
    with hub.eval_function_for_module(self.spec) as f:
      with self.assertRaisesRegex((KeyError, ValueError), "nope"):
        f([[1.0, 2.0]], signature="nope")
      with self.assertRaisesRegex(TypeError, "extra given"):
        f({"default": [[1.0, 2.0]], "x": [1.0]})


if __name__ == "__main__":
  absltest.main()
