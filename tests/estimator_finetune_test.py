"""The fine-tuning path: hub.Module(trainable=True, tags={"train"}) in a model_fn.

TRAIN mode uses the module's {"train"} variant (dropout, batch norm in
training mode, regularisers), adds REGULARIZATION_LOSSES to the loss and runs
UPDATE_OPS with the train op; EVAL and PREDICT use the default variant.  The
fine-tuned module is then exported with LatestModuleExporter.

Module: the reference fixture train_eval_bn_dropout written by tensorflow_hub
0.15 (features float32 [None, 5] -> logits [None, 3]); and the demo model's
direct path (demo_model.model_fn with use_feature_column=False).
"""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import estimator_integration as ei
from examples.estimator_demo import model as demo_model
import hub_tf1 as hub

_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata",
                       "fixtures", "ref_modules", "train_eval_bn_dropout")


def _model_fn(features, labels, mode):
  """A classifier that fine-tunes the fixture module."""
  estimators = tf.compat.v1.estimator
  is_training = mode == estimators.ModeKeys.TRAIN
  module = hub.Module(_MODULE, trainable=True,
                      tags={"train"} if is_training else None)
  ei.register_module_for_export(module, "classifier")
  logits = module(features["x"])
  if mode == estimators.ModeKeys.PREDICT:
    return estimators.EstimatorSpec(mode, predictions={"logits": logits})
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  loss += tf.compat.v1.losses.get_regularization_loss()
  if mode == estimators.ModeKeys.EVAL:
    return estimators.EstimatorSpec(mode, loss=loss)
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step())
  return estimators.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _input_fn():
  rng = np.random.RandomState(3)
  x = rng.rand(64, 5).astype(np.float32) * 4.0 + 2.0  # Mean far from 0.
  y = (x[:, 0] > 4.0).astype(np.int32) + (x[:, 1] > 5.0).astype(np.int32)
  return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(16)


def _serving_input_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 5])
  return tf.compat.v1.estimator.export.ServingInputReceiver({"x": x}, {"x": x})


def _graph_facts(mode):
  """Builds the model_fn graph for `mode`; returns what the test checks."""
  with tf.Graph().as_default() as graph:
    tf.compat.v1.train.create_global_step()
    features = {"x": tf.compat.v1.placeholder(tf.float32, [None, 5])}
    labels = tf.compat.v1.placeholder(tf.int32, [None])
    spec = _model_fn(features, labels, mode)
    ops = [op.type for op in graph.get_operations()
           if op.name.startswith("module_apply_default")]
    del spec  # Only the graph is inspected.
    return {
        "reg": len(tf.compat.v1.losses.get_regularization_losses()),
        "update_ops": len(tf.compat.v1.get_collection(
            tf.compat.v1.GraphKeys.UPDATE_OPS)),
        # Dropout in training mode draws random numbers; inference does not
        # (variable initialisers draw some too, hence the name filter).
        "dropout": any(op.type == "RandomUniform" and "dropout" in op.name
                       for op in graph.get_operations()
                       if op.name.startswith("module_apply_default")),
        "apply_ops": ops,
        "trainable": len(tf.compat.v1.trainable_variables()),
    }


class FineTuningTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.model_dir = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())

  def test_graphs_per_mode(self):
    modes = tf.compat.v1.estimator.ModeKeys
    train = _graph_facts(modes.TRAIN)
    self.assertEqual(train["reg"], 2)  # The {"train"} variant's regularisers.
    self.assertEqual(train["update_ops"], 2)  # Batch-norm moving averages.
    self.assertTrue(train["dropout"])
    self.assertEqual(train["trainable"], 6)
    for mode in (modes.EVAL, modes.PREDICT):
      facts = _graph_facts(mode)
      self.assertEqual(facts["update_ops"], 0, mode)
      self.assertFalse(facts["dropout"], mode)
      self.assertNotEmpty(facts["apply_ops"], mode)

  def test_train_runs_update_ops_and_exports_fine_tuned_module(self):
    estimator = tf.compat.v1.estimator.Estimator(_model_fn,
                                                 model_dir=self.model_dir)
    estimator.train(_input_fn, max_steps=20)
    self.assertGreater(estimator.evaluate(_input_fn, steps=2)["loss"], 0.0)
    checkpoint = estimator.latest_checkpoint()
    reader = tf.train.load_checkpoint(checkpoint)
    initial = demo_model.module_variable_values(_MODULE)
    # UPDATE_OPS ran: the batch-norm statistics moved towards the data.
    self.assertFalse(np.allclose(reader.get_tensor("module/bn/moving_mean"),
                                 initial["bn/moving_mean"]))
    self.assertFalse(np.allclose(reader.get_tensor("module/hidden/kernel"),
                                 initial["hidden/kernel"]))

    export_path = os.path.join(self.model_dir, "hub_export")
    result = ei.LatestModuleExporter("hub", _serving_input_fn).export(
        estimator, export_path)
    exported_dir = os.path.join(result.decode(), "classifier")
    exported = demo_model.module_variable_values(exported_dir)
    self.assertCountEqual(exported, initial)
    for name, value in exported.items():
      np.testing.assert_array_equal(value, reader.get_tensor("module/" + name),
                                    err_msg=name)
    # Both variants travel with the export.
    self.assertCountEqual([sorted(t) for t in
                           hub.load_module_spec(exported_dir).get_tags()],
                          [[], ["train"]])

  def test_demo_model_direct_path(self):
    root = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    module_dir = demo_model.make_text_module(os.path.join(root, "module"),
                                             batch_norm=True)
    cfg = demo_model.TrainingConfig(
        module_path=module_dir, model_dir=os.path.join(root, "model"),
        max_steps=30, save_checkpoints_steps=30, use_feature_column=False,
        eval_throttle_secs=0, num_train_examples=200, num_eval_examples=64)
    metrics, exports = demo_model.run_train_and_evaluate(cfg)
    self.assertEqual(metrics["global_step"], 30)
    self.assertNotEmpty(exports)
    exported = demo_model.module_variable_values(
        os.path.join(exports[-1].decode(), demo_model.EXPORT_NAME))
    initial = demo_model.module_variable_values(module_dir)
    self.assertFalse(np.allclose(exported["batch_norm/moving_mean"],
                                 initial["batch_norm/moving_mean"]))
    self.assertFalse(np.allclose(exported["embeddings"],
                                 initial["embeddings"]))
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(cfg.model_dir))
    for name, value in exported.items():
      np.testing.assert_array_equal(
          value, reader.get_tensor(demo_model.DIRECT_MODULE_NAME + "/" + name))


if __name__ == "__main__":
  absltest.main()
