"""Values passed between tests/interop_test.py and the reference runner.

Both sides build identical inputs from the same JSON encoding and reduce
outputs to plain lists, so results can be compared across interpreters.
This file imports neither hub_tf1 nor tensorflow_hub.
"""

import numpy as np
import tensorflow as tf


def to_tensor(enc):
  """A Tensor, SparseTensor or RaggedTensor from its JSON encoding."""
  if enc["kind"] == "dense":
    return tf.constant(np.array(enc["values"], dtype=enc["dtype"]))
  if enc["kind"] == "sparse":
    return tf.SparseTensor(
        tf.constant(enc["indices"], tf.int64),
        tf.constant(np.array(enc["values"], dtype=enc["dtype"])),
        tf.constant(enc["dense_shape"], tf.int64))
  return tf.RaggedTensor.from_row_splits(
      tf.constant(np.array(enc["values"], dtype=enc["dtype"])),
      tf.constant(enc["row_splits"], tf.int64))


def to_plain(x):
  """session.run results as JSON-able lists (floats as float64)."""
  if isinstance(x, dict):
    return {k: to_plain(v) for k, v in sorted(x.items())}
  if isinstance(x, tf.compat.v1.ragged.RaggedTensorValue):
    return {"values": to_plain(x.values), "row_splits": x.row_splits.tolist()}
  return np.asarray(x).astype(np.float64).tolist()
