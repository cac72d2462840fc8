"""Tests of hub_tf1.load: fixtures' recorded outputs, variables, errors."""

import os

from absl.testing import absltest
from absl.testing import parameterized
import tensorflow as tf

from hub_tf1.tf2 import loading
from tests import tf2_fixtures_lib

# TF1 while loops (Enter/Exit frames) inside a TF2 function get automatic
# control edges across frames; not supported yet.
_NOT_SUPPORTED = {"control_flow_v1"}


class LoadFixturesTest(parameterized.TestCase):

  @parameterized.parameters(*[n for n in tf2_fixtures_lib.fixtures_with(
      "apply") if n not in _NOT_SUPPORTED])
  def test_apply_matches_fixture(self, name):
    reasons = tf2_fixtures_lib.apply_differences(loading.load, name)
    self.assertEqual(reasons, [])

  def _load(self, name, **kwargs):
    fixture = tf2_fixtures_lib.read_fixture(name)
    return loading.load(os.path.join(tf2_fixtures_lib.MODULES,
                                     fixture["module_dir"]), **kwargs)

  def test_reference_variables_are_resource_variables(self):
    module = self._load("finetuned_text_embedding")
    self.assertNotEmpty(module.variables)
    for variable in module.variables:
      self.assertEqual(variable.handle.dtype, tf.resource)

  def test_partitioned_parts_are_all_variables(self):
    module = self._load("partitioned_embedding")
    names = [v.name for v in module.variables]
    self.assertGreater(len(names), 1, names)

  def test_in_tf_function_and_gradient(self):
    module = self._load("multi_signature")
    infos = module.spec.get_input_info_dict("default")
    key = next(iter(infos))
    shape = [2 if d is None else d for d in infos[key].get_shape().as_list()]
    x = tf.ones(shape, infos[key].dtype)

    @tf.function
    def f(x):
      return module.signatures["default"](**{key: x})["default"]
    eager = module.signatures["default"](**{key: x})["default"]
    self.assertEqual(f(x).numpy().tolist(), eager.numpy().tolist())
    with tf.GradientTape() as tape:
      tape.watch(module.variables)
      loss = tf.reduce_sum(module(x))
    grads = tape.gradient(loss, module.variables)
    self.assertTrue(any(g is not None for g in grads))

  def test_wrong_signature_name(self):
    module = self._load("multi_signature")
    with self.assertRaisesRegex(KeyError, "no_such_signature"):
      module.signatures["no_such_signature"]  # pylint: disable=pointless-statement

  def test_extra_input_key(self):
    module = self._load("multi_signature")
    infos = module.spec.get_input_info_dict("default")
    args = {k: tf.zeros([1] + i.get_shape().as_list()[1:], i.dtype)
            for k, i in infos.items()}
    args["bogus"] = tf.zeros([1])
    with self.assertRaisesRegex(TypeError, "extra given.*bogus"):
      module.signatures["default"](**args)

  def test_unknown_tags(self):
    with self.assertRaisesRegex(KeyError, "no graph with tags"):
      self._load("multi_signature", tags={"nope"})


if __name__ == "__main__":
  absltest.main()
