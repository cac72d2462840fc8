"""hub.Module in a graph with several replicas (tensorflow/hub#64).

An Estimator with `tf.distribute.MirroredStrategy` as `train_distribute`
calls its `model_fn` once per replica; hand-built towers (`tf.device` +
variable reuse) apply the model once per tower.  Either way each Module is
made once per replica: they must share one state (MirroredVariables under
the strategy), apply once per tower, and train exactly as one device does on
the same global batch with SGD and a summed loss (compared here, not
hard-coded).  Two logical CPU devices stand in for two accelerators.  The
original fails there (checked against .venv/ref when it exists).
"""

import tensorflow as tf

# Before anything else makes TensorFlow's runtime: two logical CPUs.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)

import os  # pylint: disable=g-import-not-at-top,wrong-import-position
import tempfile  # pylint: disable=g-import-not-at-top,wrong-import-position

from absl.testing import absltest  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import estimator_integration as ei  # pylint: disable=g-import-not-at-top,wrong-import-position
from estimator_integration import column_modules  # pylint: disable=g-import-not-at-top,wrong-import-position
from estimator_integration import exporter  # pylint: disable=g-import-not-at-top,wrong-import-position
import hub_tf1 as hub  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests import fidelity_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests import testing_modules as tm  # pylint: disable=g-import-not-at-top,wrong-import-position

GraphKeys = tf.compat.v1.GraphKeys
_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata",
                       "fixtures", "ref_modules", "text_embedding_nnlm")
_SENTENCES = ["cat sat", "dog ran far", "a b c", "hello world", "cat dog",
              "far far away", "sat on mat", "world"]
_LABELS = [0., 1., 1., 0., 1., 0., 1., 0.]
_GLOBAL_BATCH = len(_SENTENCES)
_STEPS = 3
_DEVICES = ["/cpu:0", "/cpu:1"]


def _session_config() -> tf.compat.v1.ConfigProto:
  # A TF1 session sees one CPU unless told otherwise.
  return tf.compat.v1.ConfigProto(device_count={"CPU": 2},
                                  inter_op_parallelism_threads=8)


def _input_fn(batch_size: int):
  def input_fn():
    data = tf.data.Dataset.from_tensor_slices(
        ({"s": np.array(_SENTENCES)}, np.array(_LABELS, np.float32)))
    return data.repeat().batch(batch_size, drop_remainder=True)
  return input_fn


def _embed(kind: str, features) -> tf.Tensor:
  if kind == "module":
    module = hub.Module(_MODULE, trainable=True)
    ei.register_module_for_export(module, "embed")  # Once per replica.
    return module(features["s"])
  column = ei.text_embedding_column("s", _MODULE, trainable=True)
  return tf.compat.v1.feature_column.input_layer(features, [column])


def _loss(embedding: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  return tf.compat.v1.losses.sigmoid_cross_entropy(
      labels, tf.reduce_sum(embedding, axis=1),
      reduction=tf.compat.v1.losses.Reduction.SUM)


def _model_fn(features, labels, mode, params):
  """One tower per call (params["towers"] == 1) or hand-built towers."""
  optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
  step = tf.compat.v1.train.get_global_step()
  towers = params["towers"]
  if towers == 1:
    loss = _loss(_embed(params["kind"], features), labels)
    train_op = optimizer.minimize(loss, global_step=step)
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
  texts = tf.split(features["s"], towers)
  labels = tf.split(labels, towers)
  losses, grads = [], {}
  for i in range(towers):
    with tf.device(_DEVICES[i]), tf.compat.v1.name_scope("tower_%d" % i), \
         tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                     reuse=i > 0):
      loss = _loss(_embed(params["kind"], {"s": texts[i]}), labels[i])
      losses.append(loss)
      for grad, var in optimizer.compute_gradients(loss):
        if grad is not None:
          grads.setdefault(var.ref(), []).append(tf.convert_to_tensor(grad))
  train_op = optimizer.apply_gradients(
      [(tf.add_n(g), v.deref()) for v, g in grads.items()], global_step=step)
  return tf.estimator.EstimatorSpec(mode, loss=tf.add_n(losses),
                                    train_op=train_op)


class _Record(tf.compat.v1.train.SessionRunHook):
  """Records each step's summed LOSSES and the module variables' types."""

  def begin(self):
    graph = tf.compat.v1.get_default_graph()
    self.losses = []
    self._loss = tf.add_n(graph.get_collection(GraphKeys.LOSSES))
    self.exported = [name for name, _ in
                     exporter.registered_modules() + column_modules.recorded()]
    self.module_variables = [v for v in
                             graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
                             if "module" in v.name]

  def shapes(self):
    return {v.name: v.shape.as_list() for v in self.module_variables}

  def before_run(self, run_context):
    return tf.compat.v1.train.SessionRunArgs(self._loss)

  def after_run(self, run_context, run_values):
    self.losses.append(float(run_values.results))


def _train(test_case, kind: str, strategy=None, towers: int = 1):
  """Trains _STEPS steps; returns (hook, {module variable: value})."""
  replicas = 2 if strategy is not None else 1
  model_dir = tempfile.mkdtemp(dir=tm.make_temp_dir(test_case))
  config = tf.estimator.RunConfig(model_dir=model_dir,
                                  train_distribute=strategy,
                                  session_config=_session_config())
  estimator = tf.estimator.Estimator(
      _model_fn, config=config, params={"kind": kind, "towers": towers})
  hook = _Record()
  estimator.train(_input_fn(_GLOBAL_BATCH // replicas), steps=_STEPS,
                  hooks=[hook])
  values = {n: estimator.get_variable_value(n)
            for n in estimator.get_variable_names() if "module" in n}
  return hook, values


class MirroredStrategyTest(absltest.TestCase):

  def _check_same_as_one_device(self, kind: str):
    single, single_values = _train(self, kind)
    strategy = tf.distribute.MirroredStrategy(_DEVICES)
    mirrored, mirrored_values = _train(self, kind, strategy)
    self.assertLen(mirrored.losses, _STEPS)
    np.testing.assert_allclose(mirrored.losses, single.losses, rtol=1e-5)
    self.assertEqual(sorted(mirrored_values), sorted(single_values))
    self.assertNotEmpty(single_values)
    for name, value in single_values.items():
      np.testing.assert_allclose(mirrored_values[name], value, rtol=1e-5,
                                 atol=1e-6, err_msg=name)
    # One state for both replicas, made by the strategy, exported once.
    self.assertLen(mirrored.exported, 1)
    self.assertEqual(mirrored.exported, single.exported)
    self.assertEqual(mirrored.shapes(), single.shapes())
    for variable in mirrored.module_variables:
      self.assertIsInstance(variable, tf.distribute.DistributedValues,
                            variable.name)
      self.assertLen(strategy.experimental_local_results(variable), 2)

  def test_module_matches_one_device(self):
    self._check_same_as_one_device("module")

  def test_text_embedding_column_matches_one_device(self):
    self._check_same_as_one_device("column")

  def test_training_changed_the_module(self):
    _, values = _train(self, "module",
                       tf.distribute.MirroredStrategy(_DEVICES))
    with tf.Graph().as_default():
      module = hub.Module(_MODULE)
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        initial = session.run(module.variable_map)
    changed = [k for k, v in initial.items()
               if not np.allclose(values["module/" + k], v)]
    self.assertNotEmpty(changed)

  def test_collections_per_tower(self):
    """State collections once, UPDATE_OPS once per replica, on its device."""
    spec = hub.create_module_spec(tm.batch_norm_module_fn,
                                  tags_and_args=[(set(), {"is_training": True})])
    strategy = tf.distribute.MirroredStrategy(_DEVICES)
    with tf.Graph().as_default() as graph:
      x = tf.constant([[1., 2., 3.], [4., 5., 7.]])

      def replica_fn():
        module = hub.Module(spec, trainable=True)
        return module(x)

      with strategy.scope():
        outputs = strategy.extended.call_for_each_replica(replica_fn)
      module_losses = [t for t in
                       graph.get_collection(GraphKeys.REGULARIZATION_LOSSES)
                       if t.name.startswith("module/")]
      self.assertLen(module_losses, 1)
      updates = graph.get_collection(GraphKeys.UPDATE_OPS)
      self.assertLen(updates, 4)  # Moving mean and variance, per replica.
      self.assertEqual(
          sorted(tf.DeviceSpec.from_string(op.device).device_index
                 for op in updates), [0, 0, 1, 1])
      variables = graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
      self.assertLen(variables, 6)
      results = strategy.experimental_local_results(outputs)
      with tf.compat.v1.Session(config=_session_config()) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        first, second = session.run(results)
        np.testing.assert_allclose(first, second, rtol=1e-6)
        session.run(updates)
        means = session.run(strategy.experimental_local_results(
            [v for v in variables if "moving_mean" in v.name][0]))
        np.testing.assert_allclose(means[0], means[1], rtol=1e-6)
        self.assertFalse(np.allclose(means[0], 0.0))


class HandBuiltTowersTest(absltest.TestCase):

  def test_module_matches_one_device(self):
    single, single_values = _train(self, "module")
    towers, tower_values = _train(self, "module", towers=2)
    np.testing.assert_allclose(towers.losses, single.losses, rtol=1e-5)
    self.assertEqual(towers.exported, ["embed"])
    self.assertEqual(towers.shapes(), single.shapes())  # One state.
    self.assertEqual(sorted(tower_values), sorted(single_values))
    for name, value in single_values.items():
      np.testing.assert_allclose(tower_values[name], value, rtol=1e-5,
                                 atol=1e-6, err_msg=name)

  def test_reuse_with_other_trainability_fails(self):
    with tf.Graph().as_default():
      hub.Module(_MODULE, trainable=True)
      with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                       reuse=True):
        with self.assertRaisesRegex(ValueError, r"module.*trainable=True"):
          hub.Module(_MODULE, trainable=False)


_REF_SNIPPET = r"""
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np

def input_fn():
  return tf.data.Dataset.from_tensor_slices(
      ({"s": np.array(["a b", "c d"])}, np.array([0., 1.], np.float32))
  ).repeat().batch(1)

def model_fn(features, labels, mode):
  emb = hub.Module(MODULE, trainable=True)(features["s"])
  loss = tf.compat.v1.losses.sigmoid_cross_entropy(
      labels, tf.reduce_sum(emb, axis=1))
  train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

config = tf.estimator.RunConfig(
    model_dir=os.path.join(TMP, "model"),
    train_distribute=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    session_config=tf.compat.v1.ConfigProto(device_count={"CPU": 2},
                                            inter_op_parallelism_threads=8))
try:
  tf.estimator.Estimator(model_fn, config=config).train(input_fn, steps=1)
  emit("error", None)
except RuntimeError as e:
  emit("error", str(e))
"""


class OriginalTest(absltest.TestCase):

  def test_original_fails_where_hub_tf1_trains(self):
    fidelity_lib.skip_without_ref(self)
    code = "MODULE = %r\n%s" % (_MODULE, _REF_SNIPPET)
    ref = fidelity_lib.run(code, reference=True)
    self.assertIn("name_scope was already taken", ref["error"] or "")
    self.assertIsNone(fidelity_lib.run(code, reference=False)["error"])


if __name__ == "__main__":
  absltest.main()
