"""Tests of register_module_for_export and LatestModuleExporter.

Single process: train_and_evaluate in local mode, direct `export()` calls,
garbage collection, the no-module warning and failed exports.
"""

import os
import tempfile

from absl import logging
from absl.testing import absltest
import numpy as np
import tensorflow as tf

import estimator_integration as ei
from estimator_integration import exporter as exporter_lib
from examples.estimator_demo import model as demo_model
import hub_tf1 as hub


def _tmpdir() -> str:
  return tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())


def _names(directory: str):
  """Sorted entry names of `directory` (without gfile's trailing slashes)."""
  return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(directory))


class RegisterModuleForExportTest(absltest.TestCase):

  def test_collection_and_duplicates(self):
    with tf.Graph().as_default() as graph:
      first, second = object(), object()
      ei.register_module_for_export(first, "a")
      ei.register_module_for_export(second, "b")
      with self.assertRaisesRegex(
          ValueError, "already a module registered to be exported as 'a'"):
        ei.register_module_for_export(second, "a")
      self.assertEqual(graph.get_collection(("__tfhub_export_modules",)),
                       [("a", first), ("b", second)])
      # A tuple key stays out of the public collection listing.
      self.assertNotIn(("__tfhub_export_modules",),
                       graph.get_all_collection_keys())
    with tf.Graph().as_default():
      ei.register_module_for_export(first, "a")  # Per graph.

  def test_exporter_arguments(self):
    exporter = ei.LatestModuleExporter("hub", demo_model.serving_input_fn)
    self.assertEqual(exporter.name, "hub")
    self.assertIsInstance(exporter, tf.compat.v1.estimator.Exporter)
    ei.LatestModuleExporter("hub", demo_model.serving_input_fn,
                            exports_to_keep=None)
    for bad in (0, -2):
      with self.assertRaisesRegex(ValueError, "positive"):
        ei.LatestModuleExporter("hub", demo_model.serving_input_fn,
                                exports_to_keep=bad)

  def test_garbage_collect_exports(self):
    base = _tmpdir()
    names = ["1600000001", "1600000003", "1600000002", "1600000004",
             "temp-1600000005", "1600000006.partial-ab", "123", "abcdefghij"]
    for name in names:
      tf.io.gfile.makedirs(os.path.join(base, name, "m"))
    deleted = exporter_lib.garbage_collect_exports(base, 2)
    self.assertCountEqual(
        deleted, [os.path.join(base, n) for n in ("1600000001", "1600000002")])
    self.assertCountEqual(_names(base),
                          set(names) - {"1600000001", "1600000002"})
    self.assertEqual(exporter_lib.garbage_collect_exports(base, None), [])
    self.assertLen(tf.io.gfile.listdir(base), 6)


class LatestModuleExporterTest(absltest.TestCase):
  """Exports from a small trained demo model."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = _tmpdir()
    cls.module_dir = demo_model.make_text_module(
        os.path.join(cls.root, "module"))
    cls.cfg = demo_model.TrainingConfig(
        module_path=cls.module_dir, model_dir=os.path.join(cls.root, "model"),
        max_steps=40, save_checkpoints_steps=20, eval_throttle_secs=0,
        exports_to_keep=2, num_train_examples=200, num_eval_examples=64)
    cls.metrics, cls.export_results = demo_model.run_train_and_evaluate(
        cls.cfg)

  def _estimator(self, model_fn=None, model_dir=None):
    estimator = demo_model.make_estimator(self.cfg)
    if model_fn is None:
      return estimator
    return tf.compat.v1.estimator.Estimator(
        model_fn=model_fn, model_dir=model_dir or self.cfg.model_dir,
        params=estimator.params)

  def test_train_and_evaluate_exports_modules(self):
    self.assertEqual(self.metrics["global_step"], 40)
    exports = demo_model.list_exports(self.cfg.model_dir)
    self.assertNotEmpty(exports)
    self.assertLessEqual(len(exports), 2)  # exports_to_keep
    # The last export result is the newest directory, as bytes.
    self.assertIsInstance(self.export_results[-1], bytes)
    self.assertEqual(self.export_results[-1].decode(), exports[-1])
    module_dir = os.path.join(exports[-1], demo_model.EXPORT_NAME)
    self.assertCountEqual(
        _names(module_dir),
        ["assets", "saved_model.pb", "tfhub_module.pb", "variables"])
    self.assertEqual(_names(os.path.join(module_dir, "assets")),
                     ["vocabulary.txt"])
    # The export holds the final checkpoint's (fine-tuned) values.
    exported = demo_model.module_variable_values(module_dir)
    final = demo_model.checkpoint_module_values(
        tf.train.latest_checkpoint(self.cfg.model_dir),
        demo_model.module_scope(), list(exported))
    initial = demo_model.module_variable_values(self.module_dir)
    np.testing.assert_array_equal(exported["embeddings"],
                                  final["embeddings"])
    self.assertFalse(np.allclose(exported["embeddings"],
                                 initial["embeddings"]))

  def test_export_given_checkpoint(self):
    checkpoint = os.path.join(self.cfg.model_dir, "model.ckpt-20")
    export_path = os.path.join(_tmpdir(), "exports")
    result = ei.LatestModuleExporter(
        "x", demo_model.serving_input_fn).export(
            self._estimator(), export_path, checkpoint_path=checkpoint)
    self.assertIsInstance(result, bytes)
    result = result.decode()
    self.assertEqual(os.path.dirname(result), export_path)
    self.assertTrue(exporter_lib.is_export_dir_name(os.path.basename(result)))
    self.assertEqual(_names(export_path), [os.path.basename(result)])
    exported = demo_model.module_variable_values(
        os.path.join(result, demo_model.EXPORT_NAME))
    want = demo_model.checkpoint_module_values(
        checkpoint, demo_model.module_scope(), ["embeddings"])
    np.testing.assert_array_equal(exported["embeddings"], want["embeddings"])

  def test_garbage_collection_keeps_newest(self):
    export_path = os.path.join(_tmpdir(), "exports")
    tf.io.gfile.makedirs(os.path.join(export_path, "1500000000"))
    exporter = ei.LatestModuleExporter("x", demo_model.serving_input_fn,
                                       exports_to_keep=2)
    results = [exporter.export(self._estimator(), export_path).decode()
               for _ in range(3)]
    self.assertLen(set(results), 3)
    self.assertEqual(_names(export_path),
                     sorted(os.path.basename(r) for r in results[1:]))

  def test_no_registered_module_warns_and_returns_none(self):
    def model_fn(features, labels, mode, params):
      del labels, params
      module = hub.Module(self.module_dir)  # Not registered.
      embedding = module(features[demo_model.FEATURE_KEY])
      return tf.compat.v1.estimator.EstimatorSpec(
          mode, predictions={"e": embedding})
    export_path = os.path.join(_tmpdir(), "exports")
    with self.assertLogs(logging.get_absl_logger(), "WARNING") as logs:
      result = ei.LatestModuleExporter(
          "x", demo_model.serving_input_fn).export(
              self._estimator(model_fn), export_path)
    self.assertIsNone(result)
    self.assertTrue(any("register_module_for_export" in line
                        for line in logs.output), logs.output)
    self.assertFalse(tf.io.gfile.exists(export_path) and
                     _names(export_path))

  def test_failed_export_leaves_nothing(self):
    class _Failing:
      """A registered "module" whose export writes a file, then fails."""

      def export(self, path, session):
        del session
        tf.io.gfile.makedirs(path)
        with tf.io.gfile.GFile(os.path.join(path, "half"), "w") as f:
          f.write("partial")
        raise RuntimeError("disk full (simulated)")

    def model_fn(features, labels, mode, params):
      spec = demo_model.model_fn(features, labels, mode, params)
      # The real module exports first; then the second one fails.
      ei.register_module_for_export(_Failing(), "broken")
      return spec

    export_path = os.path.join(_tmpdir(), "exports")
    tf.io.gfile.makedirs(os.path.join(export_path, "1500000000"))
    exporter = ei.LatestModuleExporter("x", demo_model.serving_input_fn,
                                       exports_to_keep=1)
    with self.assertRaisesRegex(RuntimeError, "disk full"):
      exporter.export(self._estimator(model_fn), export_path)
    # Neither a timestamped nor a temporary directory is left, and the
    # failed export did not garbage-collect the older one.
    self.assertEqual(_names(export_path), ["1500000000"])

  def test_no_checkpoint(self):
    estimator = self._estimator(demo_model.model_fn, model_dir=_tmpdir())
    with self.assertRaisesRegex(ValueError, "no checkpoint"):
      ei.LatestModuleExporter("x", demo_model.serving_input_fn).export(
          estimator, os.path.join(_tmpdir(), "exports"))


if __name__ == "__main__":
  absltest.main()
