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
      inputs = call.get("inputs") or {}
      if "dict" in inputs:
        args = {k: check_fixtures.make_input(env, e, "constant", k)[0]
                for k, e in inputs["dict"].items()}
      elif "single" in inputs:
        infos = module.spec.get_input_info_dict(signature, tags)
        args = {next(iter(infos)): check_fixtures.make_input(
            env, inputs["single"], "constant", "x")[0]}
      else:
        args = {}
      out = module.signatures[signature](**args)
      if not call.get("as_dict"):
        out = out["default"]
      observed = check_fixtures._encode_output(env, _numpy(out))  # pylint: disable=protected-access
      reasons += check_fixtures.compare(
          expected["output"], observed, fixture.get("rtol", 1e-5),
          fixture.get("atol", 1e-5), path="%s/%s/call%d" % (check["id"],
                                                             signature, i))
  return reasons
