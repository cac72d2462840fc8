"""Graph-building functions and sizes of the benchmark modules.

Pure TensorFlow (no hub library): the generator wraps these in a `module_fn`
with the hub library's `add_signature`, and the "floor" measurements build the
same graphs by hand.  Variable names are module-relative and identical in both.
"""

from typing import Dict

import numpy as np
import tensorflow as tf

import rows  # pylint: disable=g-bad-import-order  (bench/ is on sys.path)


# Module directory names under <work>/modules/.
MLP_SMALL = rows.MLP_SMALL
MLP_DEEP = rows.MLP_DEEP
TEXT = rows.TEXT
EMB = rows.EMB
EMB_PART = rows.EMB_PART
Sizes = rows.Sizes
FULL = rows.FULL
QUICK = rows.QUICK
ALL_MODULES = (MLP_SMALL, MLP_DEEP, TEXT, EMB, EMB_PART)
TOKENS_PER_SENTENCE = 12


def mlp(x: tf.Tensor, layers: int, width: int) -> tf.Tensor:
  """`layers` dense ReLU layers of `width` units; variables layer_<i>/{w,b}."""
  h = x
  for i in range(layers):
    with tf.compat.v1.variable_scope("layer_%d" % i):
      w = tf.compat.v1.get_variable(
          "w", [width, width],
          initializer=tf.compat.v1.random_normal_initializer(
              stddev=1.0 / np.sqrt(width)))
      b = tf.compat.v1.get_variable(
          "b", [width], initializer=tf.compat.v1.zeros_initializer())
      h = tf.nn.relu(tf.matmul(h, w) + b)
  return h


def mlp_input(width: int) -> tf.Tensor:
  return tf.compat.v1.placeholder(tf.float32, [None, width], name="x")


def vocabulary_lines(vocab_size: int):
  return ["tok%06d" % i for i in range(vocab_size)]


def text_embedding(sentences: tf.Tensor, vocab_file: str, vocab_size: int,
                   dim: int) -> tf.Tensor:
  """Whitespace tokens -> vocabulary ids (1 OOV bucket) -> sqrtn combiner."""
  embeddings = tf.compat.v1.get_variable(
      "embeddings", [vocab_size + 1, dim],
      initializer=tf.compat.v1.random_normal_initializer(stddev=0.1))
  table = tf.compat.v1.lookup.StaticVocabularyTable(
      tf.compat.v1.lookup.TextFileInitializer(
          vocab_file, tf.string, tf.compat.v1.lookup.TextFileIndex.WHOLE_LINE,
          tf.int64, tf.compat.v1.lookup.TextFileIndex.LINE_NUMBER),
      num_oov_buckets=1)
  tokens = tf.compat.v1.string_split(sentences, " ")
  ids = tf.SparseTensor(tokens.indices, table.lookup(tokens.values),
                        tokens.dense_shape)
  return tf.compat.v1.nn.embedding_lookup_sparse(
      embeddings, ids, None, combiner="sqrtn")


def text_input() -> tf.Tensor:
  return tf.compat.v1.placeholder(tf.string, [None], name="sentences")


def embedding(ids: tf.Tensor, rows: int, dim: int,
              partitions: int) -> tf.Tensor:
  """A [rows, dim] float32 table, optionally partitioned along axis 0."""
  partitioner = (tf.compat.v1.fixed_size_partitioner(partitions)
                 if partitions > 1 else None)
  table = tf.compat.v1.get_variable(
      "embeddings", [rows, dim], partitioner=partitioner,
      initializer=tf.compat.v1.random_uniform_initializer(-1.0, 1.0))
  return tf.compat.v1.nn.embedding_lookup(table, ids, partition_strategy="div")


def ids_input() -> tf.Tensor:
  return tf.compat.v1.placeholder(tf.int64, [None], name="ids")


def sample_batch(name: str, sizes: Sizes, seed: int = 0) -> np.ndarray:
  """A deterministic batch of `sizes.batch` inputs for module `name`."""
  rng = np.random.RandomState(seed)
  if name == MLP_SMALL:
    return rng.randn(sizes.batch, sizes.mlp_small_width).astype(np.float32)
  if name == MLP_DEEP:
    return rng.randn(sizes.batch, sizes.mlp_deep_width).astype(np.float32)
  if name == TEXT:
    # Ids past the vocabulary make about 1 token in 20 out-of-vocabulary.
    ids = rng.randint(0, int(sizes.text_vocab * 1.05),
                      size=(sizes.batch, TOKENS_PER_SENTENCE))
    return np.array([" ".join("tok%06d" % i for i in row) for row in ids],
                    dtype=object)
  if name in (EMB, EMB_PART):
    return rng.randint(0, sizes.emb_rows, size=sizes.batch).astype(np.int64)
  raise ValueError(name)


def build(name: str, sizes: Sizes,
          vocab_file: str = "") -> Dict[str, tf.Tensor]:
  """Builds module `name` in the current graph: {"x": input, "y": output}."""
  if name == MLP_SMALL:
    x = mlp_input(sizes.mlp_small_width)
    return {"x": x, "y": mlp(x, sizes.mlp_small_layers, sizes.mlp_small_width)}
  if name == MLP_DEEP:
    x = mlp_input(sizes.mlp_deep_width)
    return {"x": x, "y": mlp(x, sizes.mlp_deep_layers, sizes.mlp_deep_width)}
  if name == TEXT:
    x = text_input()
    y = text_embedding(x, vocab_file, sizes.text_vocab, sizes.text_dim)
    return {"x": x, "y": y}
  if name in (EMB, EMB_PART):
    x = ids_input()
    parts = sizes.emb_partitions if name == EMB_PART else 1
    return {"x": x, "y": embedding(x, sizes.emb_rows, sizes.emb_dim, parts)}
  raise ValueError(name)
