"""Tests of hub_tf1.load: fixtures' recorded outputs, variables, errors."""

import os

from absl.testing import absltest
from absl.testing import parameterized
import tensorflow as tf
from tensorflow.python.framework import function  # Defun with a fixed name.

import hub_tf1
from hub_tf1.tf2 import loading
from tests import tf2_fixtures_lib



class LoadFixturesTest(parameterized.TestCase):

  @parameterized.parameters(*tf2_fixtures_lib.fixtures_with("apply"))
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


def _defun_module_fn(scale: float):
  """A module_fn whose graph calls a library function named "shared_f"."""

  def module_fn():
    @function.Defun(tf.float32, func_name="shared_f")
    def shared_f(x):
      return x * scale

    x = tf.compat.v1.placeholder(tf.float32, [None])
    hub_tf1.add_signature(inputs=x, outputs=shared_f(x))
  return module_fn


class FunctionNamesTest(absltest.TestCase):

  def test_two_modules_with_same_function_name(self):
    # Both libraries define "shared_f", with different bodies: each module
    # must keep its own (the eager registry holds one body per name).
    paths = []
    for scale in (2.0, 3.0):
      path = os.path.join(self.create_tempdir().full_path, "m")
      with tf.Graph().as_default():
        module = hub_tf1.Module(
            hub_tf1.create_module_spec(_defun_module_fn(scale)))
        with tf.compat.v1.Session() as session:
          module.export(path, session)
      paths.append(path)
    first, second = (loading.load(p) for p in paths)
    x = tf.constant([1.0, 2.0])
    self.assertEqual(first.signatures["default"](default=x)["default"].numpy()
                     .tolist(), [2.0, 4.0])
    self.assertEqual(second.signatures["default"](default=x)["default"].numpy()
                     .tolist(), [3.0, 6.0])


if __name__ == "__main__":
  absltest.main()
