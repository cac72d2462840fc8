"""Graph-building functions and sizes of the benchmark modules.

Pure TensorFlow (no hub library): the generator wraps these in a `module_fn`
with the hub library's `add_signature`, and the "floor" measurements build the
same graphs by hand.  Variable names are module-relative and identical in both.
Only tf.compat.v1 variables and core ops (no tf.compat.v1.layers, no Keras
cells): the same functions build the graphs on TF 2.15 and on TF 2.21.
"""

import contextlib
from typing import Dict, Tuple

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
BERT = rows.BERT
ELMO = rows.ELMO
ALL_MODULES = (MLP_SMALL, MLP_DEEP, TEXT, EMB, EMB_PART, BERT, ELMO)
# Modules with a {"train"} graph variant (dropout) besides the default one.
TRAIN_VARIANT_MODULES = (BERT, ELMO)
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


# ----------------------------------------------------------------------------
# Realistic modules (issue 16): a BERT-base-sized text encoder and an
# ELMo-like character-CNN + biLSTM.  Both have a {"train"} variant with
# dropout; build_realistic() returns their inputs and outputs as dicts.

# (filter width, number of filters) of the ELMo character CNN at scale 1;
# the filter counts are divided by Sizes.elmo_filter_scale.
ELMO_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512),
                (7, 1024))
ELMO_CHAR_VOCAB = 262


def _weight(name: str, shape, stddev: float = 0.02) -> tf.Variable:
  return tf.compat.v1.get_variable(
      name, shape,
      initializer=tf.compat.v1.truncated_normal_initializer(stddev=stddev))


def _bias(name: str, size: int, value: float = 0.0) -> tf.Variable:
  return tf.compat.v1.get_variable(
      name, [size], initializer=tf.compat.v1.constant_initializer(value))


def _dense(x: tf.Tensor, units: int, name: str,
           activation=None) -> tf.Tensor:
  """x [..., d] @ {name}/kernel [d, units] + {name}/bias."""
  with tf.compat.v1.variable_scope(name):
    d = x.get_shape().as_list()[-1]
    kernel = _weight("kernel", [d, units])
    bias = _bias("bias", units)
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, d]), kernel) + bias
    y = tf.reshape(y, tf.concat([shape[:-1], [units]], 0))
    return activation(y) if activation is not None else y


def _layer_norm(x: tf.Tensor, name: str) -> tf.Tensor:
  with tf.compat.v1.variable_scope(name):
    d = x.get_shape().as_list()[-1]
    gamma = _bias("gamma", d, 1.0)
    beta = _bias("beta", d)
    # Not tf.nn.moments: TF 2.15's CPU remapper fuses that pattern into a
    # layer norm and aborts the process (protobuf CHECK "key not found:
    # value") when the graph has no dropout after it.
    centered = x - tf.reduce_mean(x, -1, keepdims=True)
    variance = tf.reduce_mean(centered * centered, -1, keepdims=True)
    return centered * tf.math.rsqrt(variance + 1e-12) * gamma + beta


def _gelu(x: tf.Tensor) -> tf.Tensor:
  return 0.5 * x * (1.0 + tf.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


def _dropout(x: tf.Tensor, rate: float, train: bool) -> tf.Tensor:
  return tf.nn.dropout(x, rate=rate) if train and rate > 0 else x


def bert_inputs() -> Dict[str, tf.Tensor]:
  """The `tokens` signature's inputs: int32 [batch, seq] each."""
  return {k: tf.compat.v1.placeholder(tf.int32, [None, None], name=k)
          for k in ("input_ids", "input_mask", "segment_ids")}


def bert_encoder(inputs: Dict[str, tf.Tensor], sizes: Sizes,
                 train: bool) -> Dict[str, tf.Tensor]:
  """A BERT-style transformer encoder; returns pooled and sequence outputs."""
  hidden, heads = sizes.bert_hidden, sizes.bert_heads
  head_dim = hidden // heads
  ids, mask = inputs["input_ids"], inputs["input_mask"]
  batch, seq = tf.shape(ids)[0], tf.shape(ids)[1]
  with tf.compat.v1.variable_scope("bert"):
    with tf.compat.v1.variable_scope("embeddings"):
      words = _weight("word_embeddings", [sizes.bert_vocab, hidden])
      types = _weight("token_type_embeddings", [2, hidden])
      positions = _weight("position_embeddings",
                          [sizes.bert_max_positions, hidden])
      h = (tf.gather(words, ids) + tf.gather(types, inputs["segment_ids"]) +
           tf.expand_dims(tf.slice(positions, [0, 0], [seq, -1]), 0))
      h = _dropout(_layer_norm(h, "LayerNorm"), 0.1, train)
    # [batch, 1, 1, seq]: 0 for real tokens, -10000 for padding.
    bias = (1.0 - tf.cast(mask[:, tf.newaxis, tf.newaxis, :],
                          tf.float32)) * -10000.0

    def split_heads(t):
      t = tf.reshape(t, [batch, seq, heads, head_dim])
      return tf.transpose(t, [0, 2, 1, 3])

    for i in range(sizes.bert_layers):
      with tf.compat.v1.variable_scope("encoder/layer_%d" % i):
        with tf.compat.v1.variable_scope("attention"):
          q = split_heads(_dense(h, hidden, "query"))
          k = split_heads(_dense(h, hidden, "key"))
          v = split_heads(_dense(h, hidden, "value"))
          scores = tf.matmul(q, k, transpose_b=True) * (head_dim ** -0.5)
          probs = _dropout(tf.nn.softmax(scores + bias), 0.1, train)
          context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]),
                               [batch, seq, hidden])
          attended = _dropout(_dense(context, hidden, "output"), 0.1, train)
          h = _layer_norm(h + attended, "LayerNorm")
        inner = _dense(h, sizes.bert_ffn, "intermediate", activation=_gelu)
        out = _dropout(_dense(inner, hidden, "output"), 0.1, train)
        h = _layer_norm(h + out, "output_LayerNorm")
    pooled = _dense(h[:, 0, :], hidden, "pooler", activation=tf.tanh)
  return {"pooled_output": pooled, "sequence_output": h}


class _ProjectedLSTMCell:
  """An LSTM cell with an output projection, duck-typed for dynamic_rnn.

  Variables (created on the first call, in the caller's variable scope):
  kernel [input + proj, 4 * units], bias [4 * units], projection [units, proj].
  """

  def __init__(self, units: int, proj: int, name: str):
    self._units, self._proj, self._name = units, proj, name

  @property
  def state_size(self) -> Tuple[int, int]:
    return (self._units, self._proj)

  @property
  def output_size(self) -> int:
    return self._proj

  def zero_state(self, batch_size, dtype):
    return (tf.zeros([batch_size, self._units], dtype),
            tf.zeros([batch_size, self._proj], dtype))

  def __call__(self, inputs, state, scope=None):
    del scope  # dynamic_rnn passes none; variables go under self._name.
    c, h = state
    with tf.compat.v1.variable_scope(self._name,
                                     reuse=tf.compat.v1.AUTO_REUSE):
      d = inputs.get_shape().as_list()[-1]
      kernel = _weight("kernel", [d + self._proj, 4 * self._units])
      bias = _bias("bias", 4 * self._units)
      projection = _weight("projection", [self._units, self._proj])
    gates = tf.matmul(tf.concat([inputs, h], 1), kernel) + bias
    i, j, f, o = tf.split(gates, 4, axis=1)
    c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(j)
    h = tf.matmul(tf.sigmoid(o) * tf.tanh(c), projection)
    return h, (c, h)


def elmo_inputs() -> Dict[str, tf.Tensor]:
  """char_ids int32 [batch, seq, max_chars]; sequence_len int32 [batch]."""
  return {
      "char_ids": tf.compat.v1.placeholder(tf.int32, [None, None, 50],
                                           name="char_ids"),
      "sequence_len": tf.compat.v1.placeholder(tf.int32, [None],
                                               name="sequence_len"),
  }


def elmo(inputs: Dict[str, tf.Tensor], sizes: Sizes,
         train: bool) -> Dict[str, tf.Tensor]:
  """Character CNN + highways + 2-layer biLSTM (dynamic_rnn while loops).

  Returns:
    {"elmo": learned mix of the 3 layers [batch, seq, 2 * proj],
     "default": its mean over the real tokens [batch, 2 * proj]}.
  """
  chars, lengths = inputs["char_ids"], inputs["sequence_len"]
  batch, seq = tf.shape(chars)[0], tf.shape(chars)[1]
  max_chars = tf.shape(chars)[2]
  proj = sizes.elmo_proj
  with tf.compat.v1.variable_scope("elmo"):
    with tf.compat.v1.variable_scope("char_cnn"):
      table = _weight("char_embeddings", [ELMO_CHAR_VOCAB, sizes.elmo_char_dim],
                      stddev=1.0)
      # [batch * seq, 1, max_chars, char_dim]: words as 1-row images.
      x = tf.reshape(tf.gather(table, chars),
                     [batch * seq, 1, max_chars, sizes.elmo_char_dim])
      pooled = []
      for width, count in ELMO_FILTERS:
        count = max(1, count // sizes.elmo_filter_scale)
        w = _weight("W_cnn_%d" % width, [1, width, sizes.elmo_char_dim, count])
        b = _bias("b_cnn_%d" % width, count)
        conv = tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="VALID") + b
        pooled.append(tf.reduce_max(tf.tanh(conv), axis=[1, 2]))
      h = tf.concat(pooled, 1)
      for i in range(sizes.elmo_highways):
        with tf.compat.v1.variable_scope("highway_%d" % i):
          d = h.get_shape().as_list()[-1]
          carry = tf.sigmoid(_dense(h, d, "carry"))
          transform = tf.nn.relu(_dense(h, d, "transform"))
          h = carry * transform + (1.0 - carry) * h
      h = _dense(h, proj, "projection")
      tokens = tf.reshape(h, [batch, seq, proj])
    layers = [tf.concat([tokens, tokens], -1)]
    layer_input = tokens
    for i in range(2):
      with tf.compat.v1.variable_scope("lstm_%d" % i):
        cells = [_ProjectedLSTMCell(sizes.elmo_lstm_units, proj, d)
                 for d in ("forward", "backward")]
        (fw, bw), _ = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            cells[0], cells[1], _dropout(layer_input, 0.1, train),
            sequence_length=lengths, dtype=tf.float32)
        if i > 0:  # Residual connection between the LSTM layers, as in ELMo.
          fw, bw = fw + layer_input, bw + layer_input
        layers.append(tf.concat([fw, bw], -1))
        layer_input = fw  # The next layer reads the forward states.
    weights = tf.nn.softmax(tf.compat.v1.get_variable(
        "mix_weights", [3], initializer=tf.compat.v1.zeros_initializer()))
    gamma = _bias("mix_gamma", 1, 1.0)
    mixed = gamma * tf.add_n([weights[i] * layers[i] for i in range(3)])
    mask = tf.sequence_mask(lengths, seq, dtype=tf.float32)[:, :, tf.newaxis]
    mean = tf.reduce_sum(mixed * mask, 1) / tf.maximum(
        tf.reduce_sum(mask, 1), 1.0)
  return {"elmo": mixed, "default": mean}


def build_realistic(name: str, sizes: Sizes,
                    train: bool) -> Dict[str, Dict[str, tf.Tensor]]:
  """Builds BERT or ELMO in the current graph: {"inputs": .., "outputs": ..}.

  ELMO's while loops are TF1 ones (Enter/Exit/NextIteration, as in modules
  written before control flow v2): control flow v2 is off while it is built.
  """
  if name == BERT:
    inputs = bert_inputs()
    return {"inputs": inputs, "outputs": bert_encoder(inputs, sizes, train)}
  if name == ELMO:
    inputs = elmo_inputs()
    with v1_control_flow():
      outputs = elmo(inputs, sizes, train)
    return {"inputs": inputs, "outputs": outputs}
  raise ValueError(name)


@contextlib.contextmanager
def v1_control_flow():
  """Control flow v1 inside (TF1 while loops and their gradients).

  A TF1 training program on TF 2.x turns control flow v2 off: the gradient of
  a v1 while loop's TensorArrays must be built by the v1 implementation too.
  """
  from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top
  was_v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
  control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
  try:
    yield
  finally:
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = was_v2


# Signature of each realistic module (BERT's is "tokens", as in the BERT
# modules on tfhub.dev; ELMo's the default one) and the output a training
# loss and the sanity run read.
REALISTIC_SIGNATURE = {BERT: "tokens", ELMO: "default"}
REALISTIC_OUTPUT = {BERT: "pooled_output", ELMO: "default"}


def realistic_feed(name: str, sizes: Sizes, seed: int = 0,
                   train: bool = False) -> Dict[str, np.ndarray]:
  """Input values for BERT or ELMO: sizes.real_batch x sizes.real_seq.

  With `train`, sizes.real_train_seq tokens per example instead.
  """
  rng = np.random.RandomState(seed)
  b = sizes.real_batch
  s = sizes.real_train_seq if train else sizes.real_seq
  if name == BERT:
    mask = np.ones([b, s], np.int32)
    mask[:, s - s // 4:] = 0  # A padded tail.
    return {"input_ids": rng.randint(0, sizes.bert_vocab, [b, s]).astype(
                np.int32),
            "input_mask": mask,
            "segment_ids": (np.arange(s) >= s // 2).astype(np.int32)[
                np.newaxis].repeat(b, 0)}
  if name == ELMO:
    return {"char_ids": rng.randint(0, ELMO_CHAR_VOCAB, [b, s, 50]).astype(
                np.int32),
            "sequence_len": np.array([s - i % 3 for i in range(b)], np.int32)}
  raise ValueError(name)
