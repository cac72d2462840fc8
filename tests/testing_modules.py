"""Small `module_fn`s and helpers shared by the hub_tf1 core tests.

Every builder here is a plain TF1 `module_fn` for `hub.create_module_spec`
(or a factory returning one), written so that the values a test expects can
be computed in numpy from what the test reads back (variable values, inputs).
"""

import hashlib
import os
import tempfile
from typing import Callable, List, Sequence

import numpy as np
import tensorflow as tf

import hub_tf1 as hub

FIXTURES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "testdata", "fixtures")

# The collections tensorflow_hub 0.15 accepts in a stored graph variant.
WHITELISTED_COLLECTIONS = frozenset([
    "variables", "trainable_variables", "model_variables",
    "table_initializer", "update_ops", "regularization_losses",
    "asset_filepaths", "cond_context", "while_context",
    "hub_module_attachments",
])


def make_temp_dir(test_case) -> str:
  """A fresh directory under TEST_TMPDIR (or the system temp dir)."""
  base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
  path = tempfile.mkdtemp(prefix="%s_" % type(test_case).__name__, dir=base)
  test_case.addCleanup(lambda: tf.io.gfile.rmtree(path)
                       if tf.io.gfile.exists(path) else None)
  return path


def linear_module_fn():
  """`default`: x [None, 2] float32 -> x @ w + b, with w [2, 3], b [3]."""
  x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
  w = tf.compat.v1.get_variable(
      "w", [2, 3], initializer=tf.compat.v1.random_normal_initializer(seed=1))
  b = tf.compat.v1.get_variable(
      "b", [3], initializer=tf.compat.v1.random_normal_initializer(seed=2))
  hub.add_signature(inputs=x, outputs=tf.matmul(x, w) + b)


def two_signature_module_fn():
  """A big `default` signature and a tiny `small` one sharing nothing.

  `default`: x [None, 8] -> a 6-layer tanh MLP (many ops);
  `small`: {"a": [None] float32, "b": [None] float32} -> {"sum", "diff"}
  (no default output).
  """
  x = tf.compat.v1.placeholder(tf.float32, [None, 8], name="x")
  h = x
  for i in range(6):
    w = tf.compat.v1.get_variable(
        "layer%d/w" % i, [8, 8],
        initializer=tf.compat.v1.random_normal_initializer(seed=10 + i))
    h = tf.tanh(tf.matmul(h, w) + 1.0)
  hub.add_signature(inputs=x, outputs={"default": h, "mean":
                                       tf.reduce_mean(h, axis=1)})
  a = tf.compat.v1.placeholder(tf.float32, [None], name="a")
  b = tf.compat.v1.placeholder(tf.float32, [None], name="b")
  hub.add_signature("small", inputs={"a": a, "b": b},
                    outputs={"sum": a + b, "diff": a - b})


def no_input_module_fn():
  """`default` with no inputs: the constant-valued variable v [2] = [1, 2]."""
  v = tf.compat.v1.get_variable(
      "v", initializer=tf.constant([1.0, 2.0]))
  hub.add_signature(outputs=v.read_value() * 1.0)


def ref_and_resource_module_fn():
  """A ref variable (`ref/v`) and a resource variable (`res/v`), both [2]."""
  with tf.compat.v1.variable_scope("ref", use_resource=False):
    ref = tf.compat.v1.get_variable(
        "v", initializer=tf.constant([1.0, 2.0]))
  with tf.compat.v1.variable_scope("res", use_resource=True):
    res = tf.compat.v1.get_variable(
        "v", initializer=tf.constant([10.0, 20.0]))
  x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
  hub.add_signature(inputs=x, outputs=x * ref + res)


def partitioned_module_fn(num_rows: int = 10, dim: int = 2,
                          num_shards: int = 3,
                          use_resource: bool = True) -> Callable[[], None]:
  """An `emb` [num_rows, dim] split in `num_shards`; `default`: ids -> rows."""

  def module_fn():
    ids = tf.compat.v1.placeholder(tf.int64, [None], name="ids")
    with tf.compat.v1.variable_scope("", use_resource=use_resource):
      emb = tf.compat.v1.get_variable(
          "emb", [num_rows, dim],
          initializer=tf.compat.v1.random_normal_initializer(seed=3),
          partitioner=tf.compat.v1.fixed_size_partitioner(num_shards))
    hub.add_signature(inputs=ids,
                      outputs=tf.nn.embedding_lookup(emb, ids))

  return module_fn


def write_vocab(directory: str, words: Sequence[str],
                name: str = "vocab.txt") -> str:
  path = os.path.join(directory, name)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write("".join(w + "\n" for w in words))
  return path


def vocab_module_fn(vocab_path: str) -> Callable[[], None]:
  """`default`: words [None] string -> ids from a vocabulary file (OOV -1)."""

  def module_fn():
    words = tf.compat.v1.placeholder(tf.string, [None], name="words")
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
        default_value=-1)
    hub.add_signature(inputs=words, outputs=table.lookup(words))

  return module_fn


def batch_norm_module_fn(is_training: bool) -> None:
  """Dense layer with an L2 regularizer, then a hand-written batch norm.

  `default`: x [None, 3] -> batch_norm(x @ dense/kernel + dense/bias).  In
  training mode it normalises with the batch moments and puts the
  moving-mean/variance updates (momentum 0.99) in UPDATE_OPS, like
  `tf.compat.v1.layers.batch_normalization` (not available with Keras 3).
  """
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  with tf.compat.v1.variable_scope("dense"):
    kernel = tf.compat.v1.get_variable(
        "kernel", [3, 2],
        initializer=tf.compat.v1.random_normal_initializer(seed=4))
    bias = tf.compat.v1.get_variable(
        "bias", [2], initializer=tf.compat.v1.constant_initializer(0.5))
    tf.compat.v1.add_to_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES,
        tf.multiply(0.5, tf.reduce_sum(tf.square(kernel)), name="l2"))
  h = tf.matmul(x, kernel) + bias
  with tf.compat.v1.variable_scope("batch_normalization"):
    gamma = tf.compat.v1.get_variable("gamma", [2],
                                      initializer=tf.ones_initializer())
    beta = tf.compat.v1.get_variable("beta", [2],
                                     initializer=tf.zeros_initializer())
    moving_mean = tf.compat.v1.get_variable(
        "moving_mean", [2], initializer=tf.zeros_initializer(),
        trainable=False)
    moving_variance = tf.compat.v1.get_variable(
        "moving_variance", [2], initializer=tf.ones_initializer(),
        trainable=False)
    if is_training:
      mean, variance = tf.nn.moments(h, axes=[0])
      for var, value in ((moving_mean, mean), (moving_variance, variance)):
        update = tf.compat.v1.assign_sub(var, (var - value) * 0.01)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                       update.op)
    else:
      mean, variance = moving_mean, moving_variance
    y = tf.nn.batch_normalization(h, mean, variance, beta, gamma, 1e-3)
  hub.add_signature(inputs=x, outputs=y)


def graph_op_count(graph: tf.Graph) -> int:
  return len(graph.get_operations())


def dir_snapshot(path: str) -> dict:
  """Relative file path -> sha256 of every file below `path`."""
  result = {}
  for root, _, files in tf.io.gfile.walk(path):
    for name in files:
      full = os.path.join(root, name)
      with tf.io.gfile.GFile(full, "rb") as f:
        result[os.path.relpath(full, path)] = hashlib.sha256(
            f.read()).hexdigest()
  return result


def run_init(session: tf.compat.v1.Session) -> None:
  session.run([tf.compat.v1.global_variables_initializer(),
               tf.compat.v1.tables_initializer()])


def concat_parts(session, parts: List[tf.Variable]) -> np.ndarray:
  return np.concatenate(session.run(parts), axis=0)
