"""Runs the fixtures' `apply` checks through hub_tf1.load (eager TF2).

Rules: inputs are built and outputs encoded by the fixtures' own
check_fixtures.py, and compared with its `compare` and the fixture's
tolerances, so what is checked is what tensorflow_hub 0.15 recorded.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "testdata", "fixtures")
MODULES = os.path.join(FIXTURES, "ref_modules")
sys.path.insert(0, FIXTURES)

import check_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position


class _Env(object):
  np = np
  tf = tf


def fixtures_with(check_type: str):
  """Names of the fixtures that have a check of `check_type`."""
  names = []
  for name in sorted(os.listdir(MODULES)):
    if name.endswith(".json"):
      with open(os.path.join(MODULES, name)) as f:
        fixture = json.load(f)
      if any(c["type"] == check_type for c in fixture["checks"]):
        names.append(name[:-len(".json")])
  return names


def read_fixture(name: str):
  with open(os.path.join(MODULES, name + ".json")) as f:
    return json.load(f)


def _numpy(value):
  if isinstance(value, dict):
    return {k: _numpy(v) for k, v in value.items()}
  if isinstance(value, tf.SparseTensor):
    return tf.compat.v1.SparseTensorValue(value.indices.numpy(),
                                          value.values.numpy(),
                                          value.dense_shape.numpy())
  if isinstance(value, tf.RaggedTensor):
    return tf.compat.v1.ragged.RaggedTensorValue(_numpy(value.values),
                                                 value.row_splits.numpy())
  return value.numpy()


def call_inputs(spec, call, tags) -> dict:
  """A fixture call's inputs as keyword arguments of its signature."""
  env = _Env()
  inputs = call.get("inputs") or {}
  if "dict" in inputs:
    return {k: check_fixtures.make_input(env, e, "constant", k)[0]
            for k, e in inputs["dict"].items()}
  if "single" in inputs:
    infos = spec.get_input_info_dict(call.get("signature") or "default", tags)
    return {next(iter(infos)): check_fixtures.make_input(
        env, inputs["single"], "constant", "x")[0]}
  return {}


def apply_differences(load, name: str):
  """Differences between load(module).signatures[...] and the fixture."""
  fixture = read_fixture(name)
  handle = os.path.join(MODULES, fixture["module_dir"])
  env = _Env()
  reasons = []
  for check in fixture["checks"]:
    if check["type"] != "apply":
      continue
    tags = check_fixtures._tags_arg(check.get("tags"))  # pylint: disable=protected-access
    module = load(handle, tags=tags)
    for i, (call, expected) in enumerate(zip(check["calls"],
                                             check["expected"])):
      signature = call.get("signature") or "default"
      args = call_inputs(module.spec, call, tags)
      out = module.signatures[signature](**args)
      if not call.get("as_dict"):
        out = out["default"]
      observed = check_fixtures._encode_output(env, _numpy(out))  # pylint: disable=protected-access
      reasons += check_fixtures.compare(
          expected["output"], observed, fixture.get("rtol", 1e-5),
          fixture.get("atol", 1e-5), path="%s/%s/call%d" % (check["id"],
                                                             signature, i))
  return reasons


def _layer_inputs(layer, call):
  """The call's inputs as the layer takes them (a tensor or a dict)."""
  args = call_inputs(layer.resolved_object.spec, call,
                     layer._module_tags(False))  # pylint: disable=protected-access
  if "single" in (call.get("inputs") or {}):
    return next(iter(args.values()))
  return args


def train_step_differences(keras_layer_cls, name: str):
  """Differences between KerasLayer fine-tuning and the fixture's train_step.

  The TF1 protocol of check_fixtures.observe_train_step, in TF2: the layer
  (trainable=True, called with training=True) replaces
  `hub.Module(trainable=True, tags=...)`; each step reads the loss in a call
  of its own, as the TF1 code reads it in a session run of its own, and puts
  back the non-trainable variables that call updated (that TF1 run ran no
  update ops); then one plain SGD step with the module's update ops, as
  `GradientDescentOptimizer.minimize` under control dependencies on
  UPDATE_OPS did.

  Args:
    keras_layer_cls: hub_tf1.KerasLayer.
    name: the fixture.

  Returns:
    A list of differences (empty when every train_step check matches).
  """
  fixture = read_fixture(name)
  handle = os.path.join(MODULES, fixture["module_dir"])
  env = _Env()
  reasons = []
  for check in fixture["checks"]:
    if check["type"] != "train_step":
      continue
    tags = set(check.get("tags") or ())
    # training=True picks {"train"} on top of the layer's tags.
    base_tags = tags - {"train"}
    layer = keras_layer_cls(handle, trainable=True, tags=base_tags or None,
                            signature=check["call"].get("signature"),
                            signature_outputs_as_dict=True)
    variant = layer.resolved_object.variant(layer._module_tags(True))  # pylint: disable=protected-access
    if ("train" in tags) != ("train" in variant.tags):
      reasons.append("%s: fixture tags %s, layer runs %s" % (
          check["id"], sorted(tags), sorted(variant.tags)))
      continue
    inputs = _layer_inputs(layer, check["call"])
    output = check.get("output", "default")
    weights = layer.trainable_weights
    frozen = [w for w in layer.weights
              if not any(w is t for t in weights)]

    def loss_of(outputs):
      loss = tf.reduce_sum(outputs[output])
      if check.get("include_regularization") and layer.losses:
        loss += tf.add_n(layer.losses)
      return loss

    losses = []
    for _ in range(check.get("steps", 1)):
      saved = [tf.identity(w) for w in frozen]
      # Under a tape, as the step's call below: both calls then run the
      # same function (TF2 runs another one for calls a tape records), so
      # a seeded random op (dropout) draws in the order the TF1 session's
      # two runs drew.
      with tf.GradientTape():
        losses.append(float(str(np.float32(
            loss_of(layer(inputs, training=True)).numpy()))))
      for w, value in zip(frozen, saved):
        w.assign(value)
      with tf.GradientTape() as tape:
        loss = loss_of(layer(inputs, training=True))
      grads = tape.gradient(loss, weights)
      for w, g in zip(weights, grads):
        if g is not None:
          w.assign_sub(check["learning_rate"] * tf.convert_to_tensor(g))
      if not check.get("run_update_ops"):
        for w, value in zip(frozen, saved):
          w.assign(value)
    by_name = {}
    for key, parts in layer.resolved_object.variables_by_key.items():
      by_name[key] = parts
    watched = {}
    for key in check["watch"]:
      parts = by_name.get(key)
      if not parts:
        reasons.append("%s: no variable %r in the layer (has %s)" % (
            check["id"], key, sorted(by_name)))
        continue
      values = [np.asarray(p) for p in parts]
      watched[key] = check_fixtures.encode_value(
          env, values[0] if len(values) == 1 else np.concatenate(values,
                                                                 axis=0))
    observed = {"losses": losses, "watched": watched}
    reasons += check_fixtures.compare(
        check["expected"], observed, check.get("rtol", 1e-5),
        check.get("atol", 1e-5), path="%s/train_step" % check["id"])
  return reasons
