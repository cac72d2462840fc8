"""The demo's text module, synthetic data set and Estimator model.

Shared by the demo job (demo.py), the per-task trainer program (trainer.py)
and the tests:

* a synthetic sentiment data set generated from a seed (nothing downloaded);
* `text_module_fn`: a text-embedding module for `hub_tf1.create_module_spec`
  (vocabulary file asset + lookup table + embedding variable partitioned in
  two, an L2 regulariser, optional batch norm, a "train" variant with dropout);
* `model_fn`: a classifier over that module, either through
  `text_embedding_column` (default) or through `hub_tf1.Module` directly with
  `tags={"train"}` in TRAIN mode (the fine-tuning path); the module is
  registered for export in both cases;
* `run_train_and_evaluate`: `tf.estimator.train_and_evaluate` with a
  `LatestModuleExporter`, in one process or as one task of a cluster
  (RunConfig reads TF_CONFIG).
"""

import dataclasses
import os
import random
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from estimator_integration import exporter as exporter_lib
from estimator_integration import feature_columns

# Importing the Estimator integration made sure there is one (on TF >= 2.16
# through estimator_integration/compat); user code reaches it like this.
_tf_estimator = tf.compat.v1.estimator

POSITIVE_WORDS = ("good", "great", "excellent", "superb", "lovely",
                  "brilliant", "delightful", "moving")
NEGATIVE_WORDS = ("bad", "awful", "poor", "terrible", "boring", "dull",
                  "horrible", "clumsy")
NEUTRAL_WORDS = ("the", "a", "movie", "plot", "actor", "scene", "story",
                 "film", "was", "is", "very", "quite", "really", "this",
                 "that", "music", "ending", "cast", "and", "but", "of", "it")
VOCABULARY = NEUTRAL_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS
NUM_OOV_BUCKETS = 1
# Words outside the vocabulary that the generator sprinkles in.
UNKNOWN_WORDS = ("zorp", "blick", "quux")

FEATURE_KEY = "text"
EXPORT_NAME = "text_embedding"
EXPORTER_NAME = "tf_hub"
# Greppable prefix of the progress lines the trainer logs (see ProgressHook).
EVENT_PREFIX = "HUB_DEMO_EVENT"


def make_sentences(num_examples: int,
                   seed: int) -> Tuple[List[str], np.ndarray]:
  """A reproducible synthetic sentiment data set.

  Each sentence mixes 3-7 neutral words with 1-2 words of its class (label 1:
  positive, 0: negative); one in ten also carries a word of the other class,
  one in eight an out-of-vocabulary word, so the task is learnable but not
  trivial.

  Returns:
    (sentences, labels) with labels an int32 array.
  """
  rng = random.Random(seed)
  sentences, labels = [], []
  for _ in range(num_examples):
    label = rng.randint(0, 1)
    own, other = ((POSITIVE_WORDS, NEGATIVE_WORDS) if label else
                  (NEGATIVE_WORDS, POSITIVE_WORDS))
    words = [rng.choice(NEUTRAL_WORDS) for _ in range(rng.randint(3, 7))]
    words += [rng.choice(own) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.1:
      words.append(rng.choice(other))
    if rng.random() < 0.125:
      words.append(rng.choice(UNKNOWN_WORDS))
    rng.shuffle(words)
    sentences.append(" ".join(words))
    labels.append(label)
  return sentences, np.array(labels, dtype=np.int32)


def write_vocabulary(path: str, words: Sequence[str] = VOCABULARY) -> None:
  """Writes one word per line (line number = token id), atomically."""
  data = "".join(w + "\n" for w in words).encode("utf-8")
  from hub_tf1 import fileio  # pylint: disable=g-import-not-at-top
  tf.io.gfile.makedirs(os.path.dirname(path) or ".")
  fileio.atomic_write_bytes(path, data, overwrite=True)


def text_module_fn(vocabulary_path: str,
                   embedding_dim: int = 8,
                   num_partitions: int = 2,
                   is_training: bool = False,
                   batch_norm: bool = False,
                   l2_scale: float = 1e-4) -> None:
  """Graph of the demo's text-embedding module, for `create_module_spec`.

  Signatures:
    default: sentences `tf.string [None]` -> float32 `[None, embedding_dim]`,
      the sqrt(n)-weighted sum of the word embeddings (zeros for an empty
      sentence), optionally batch-normalised; dropout when `is_training`.
    words: words `tf.string [None]` -> their embeddings.
  """
  vocab_size = sum(1 for _ in tf.io.gfile.GFile(vocabulary_path))
  sentences = tf.compat.v1.placeholder(tf.string, [None], name="sentences")
  table = tf.lookup.StaticVocabularyTable(
      tf.lookup.TextFileInitializer(
          vocabulary_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
      num_oov_buckets=NUM_OOV_BUCKETS)
  partitioner = (tf.compat.v1.fixed_size_partitioner(num_partitions)
                 if num_partitions > 1 else None)
  embeddings = tf.compat.v1.get_variable(
      "embeddings", [vocab_size + NUM_OOV_BUCKETS, embedding_dim],
      initializer=tf.compat.v1.random_normal_initializer(stddev=0.3, seed=7),
      partitioner=partitioner,
      regularizer=tf.keras.regularizers.l2(l2_scale) if l2_scale else None)

  tokens = tf.compat.v1.string_split(sentences, sep=" ")
  token_ids = tf.SparseTensor(tokens.indices, table.lookup(tokens.values),
                              tokens.dense_shape)
  combined = tf.nn.safe_embedding_lookup_sparse(
      embeddings, token_ids, combiner="sqrtn")
  if batch_norm:
    combined = _batch_norm(combined, is_training, "batch_norm")
  if is_training:
    combined = tf.compat.v1.nn.dropout(combined, rate=0.1, seed=11)
  hub.add_signature("default", {"default": sentences}, {"default": combined})

  words = tf.compat.v1.placeholder(tf.string, [None], name="words")
  word_vectors = tf.compat.v1.nn.embedding_lookup(
      embeddings, table.lookup(words), partition_strategy="div")
  hub.add_signature("words", {"default": words}, {"default": word_vectors})


def _batch_norm(x: tf.Tensor, is_training: bool, scope: str,
                momentum: float = 0.99, epsilon: float = 1e-3) -> tf.Tensor:
  """Batch normalisation over axis 0, written with TF ops only.

  `tf.compat.v1.layers.batch_normalization` needs Keras 2 (on TF >= 2.16,
  TF_USE_LEGACY_KERAS=1); this keeps the demo module buildable either way
  with the same variables (`gamma`, `beta`, `moving_mean`,
  `moving_variance`) and, in training, the two moving-average updates in
  UPDATE_OPS.
  """
  width = x.shape[-1]
  with tf.compat.v1.variable_scope(scope):
    gamma = tf.compat.v1.get_variable("gamma", [width],
                                      initializer=tf.ones_initializer())
    beta = tf.compat.v1.get_variable("beta", [width],
                                     initializer=tf.zeros_initializer())
    statistics = [
        tf.compat.v1.get_variable(name, [width], initializer=initializer,
                                  trainable=False)
        for name, initializer in (("moving_mean", tf.zeros_initializer()),
                                  ("moving_variance", tf.ones_initializer()))]
    if not is_training:
      return tf.nn.batch_normalization(x, statistics[0], statistics[1], beta,
                                       gamma, epsilon)
    moments = tf.nn.moments(x, axes=[0])
    for variable, batch_value in zip(statistics, moments):
      update = variable.assign_sub((variable - batch_value) * (1 - momentum))
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                     update.op)
    return tf.nn.batch_normalization(x, moments[0], moments[1], beta, gamma,
                                     epsilon)


def make_text_module(module_dir: str,
                     vocabulary_path: Optional[str] = None,
                     embedding_dim: int = 8,
                     num_partitions: int = 2,
                     batch_norm: bool = False) -> str:
  """Creates the demo module with `create_module_spec` and exports it.

  The module has two variants: the default tag set and {"train"} (dropout,
  and batch-norm statistics updates when `batch_norm`).  Initial weights come
  from the variables' initialisers.

  Returns:
    `module_dir`.
  """
  if vocabulary_path is None:
    vocabulary_path = os.path.join(
        os.path.dirname(module_dir.rstrip("/")) or ".", "vocabulary.txt")
  write_vocabulary(vocabulary_path)
  common = dict(vocabulary_path=vocabulary_path, embedding_dim=embedding_dim,
                num_partitions=num_partitions, batch_norm=batch_norm)
  spec = hub.create_module_spec(
      text_module_fn,
      tags_and_args=[(set(), dict(common, is_training=False)),
                     ({"train"}, dict(common, is_training=True))])
  with tf.Graph().as_default():
    module = hub.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(module_dir, session)
  return module_dir


def module_variable_values(module_dir: str,
                           tags: Optional[set] = None) -> Dict[str, np.ndarray]:
  """Variable values of a stored module, by module-relative name.

  Partitioned variables are returned whole (parts concatenated on axis 0).
  """
  with tf.Graph().as_default():
    module = hub.Module(module_dir, tags=tags)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      values = {}
      for name, var in module.variable_map.items():
        if isinstance(var, (list, tuple)):
          values[name] = np.concatenate(session.run(list(var)), axis=0)
        else:
          values[name] = session.run(var)
  return values


def checkpoint_module_values(checkpoint_path: str, scope: str,
                             names: Sequence[str]) -> Dict[str, np.ndarray]:
  """Values of `<scope>/<name>` for each name in a training checkpoint."""
  reader = tf.train.load_checkpoint(checkpoint_path)
  return {n: reader.get_tensor("%s/%s" % (scope, n)) for n in names}


def word_embeddings(module_dir: str,
                    words: Sequence[str]) -> np.ndarray:
  """Rows of the module's embedding table for `words` ("words" signature)."""
  with tf.Graph().as_default():
    module = hub.Module(module_dir)
    vectors = module(tf.constant(list(words)), signature="words")
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      return session.run(vectors)


# --------------------------------------------------------------------------
# The Estimator model.

# Variable scope of the column-created module in the training graph; its
# variables are `<COLUMN_SCOPE>/module/...` in checkpoints.
COLUMN_SCOPE = FEATURE_KEY + "_hub_module_embedding"
# Name of the module in the direct (fine-tuning) path: `<name>/...`.
DIRECT_MODULE_NAME = "text_module"


class _ColumnStateManager(tf.__internal__.feature_column.StateManager):
  """Holds the resources a v2 feature column creates (here: its Module).

  This is the state-manager protocol `DenseFeatures` uses; owning it lets the
  model_fn reach the `hub_tf1.Module` the column made and register it for
  export.
  """

  def __init__(self, trainable: bool):
    self._trainable = trainable  # Read by the hub columns' create_state.
    self._resources = {}

  def add_resource(self, feature_column, name, resource):
    self._resources[(feature_column.name, name)] = resource
    return resource

  def has_resource(self, feature_column, name):
    return (feature_column.name, name) in self._resources

  def get_resource(self, feature_column, name):
    return self._resources[(feature_column.name, name)]


def embed_with_column(column: Any, features: Dict[str, Any],
                      trainable: bool) -> Tuple[tf.Tensor, Any]:
  """Applies a hub feature column; returns (dense tensor, its hub Module)."""
  state = _ColumnStateManager(trainable)
  with tf.compat.v1.variable_scope(column.name):
    column.create_state(state)
    cache = tf.__internal__.feature_column.FeatureTransformationCache(features)
    dense = column.get_dense_tensor(cache, state)
  return dense, state.get_resource(column, feature_columns.MODULE_RESOURCE_NAME)


def _dense(inputs: tf.Tensor, units: int, name: str) -> tf.Tensor:
  """A fully connected layer (plain variables; no Keras in graph mode)."""
  with tf.compat.v1.variable_scope(name):
    kernel = tf.compat.v1.get_variable(
        "kernel", [inputs.shape[-1], units],
        initializer=tf.compat.v1.glorot_uniform_initializer())
    bias = tf.compat.v1.get_variable(
        "bias", [units], initializer=tf.compat.v1.zeros_initializer())
  return tf.matmul(inputs, kernel) + bias


def model_fn(features, labels, mode, params):
  """A sentiment classifier over the demo text module.

  params:
    module_path: the module to start from.
    use_feature_column: True: `text_embedding_column(trainable=True)`;
      False: `hub_tf1.Module(trainable=True, tags={"train"} in TRAIN)`.
    hidden_units, learning_rate.
  """
  is_training = mode == _tf_estimator.ModeKeys.TRAIN
  if params.get("use_feature_column", True):
    column = feature_columns.text_embedding_column(
        FEATURE_KEY, params["module_path"], trainable=True)
    embedding, module = embed_with_column(column, features, is_training)
  else:
    module = hub.Module(params["module_path"], trainable=True,
                        tags={"train"} if is_training else None,
                        name=DIRECT_MODULE_NAME)
    embedding = module(features[FEATURE_KEY])
  exporter_lib.register_module_for_export(module, EXPORT_NAME)

  hidden = embedding
  for i, units in enumerate(params.get("hidden_units", (16,))):
    hidden = tf.nn.relu(_dense(hidden, units, "hidden_%d" % i))
  logits = _dense(hidden, 2, "logits")
  class_ids = tf.argmax(logits, axis=1)
  predictions = {"class_ids": class_ids,
                 "probabilities": tf.nn.softmax(logits),
                 "embedding": embedding}
  if mode == _tf_estimator.ModeKeys.PREDICT:
    return _tf_estimator.EstimatorSpec(mode, predictions=predictions)

  labels = tf.reshape(labels, [-1])
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  # The module's regularisers: a trainable hub.Module copies them into
  # REGULARIZATION_LOSSES.
  loss += tf.compat.v1.losses.get_regularization_loss()
  accuracy = tf.compat.v1.metrics.accuracy(labels, class_ids)
  if mode == _tf_estimator.ModeKeys.EVAL:
    return _tf_estimator.EstimatorSpec(
        mode, loss=loss, eval_metric_ops={"accuracy": accuracy})

  optimizer = tf.compat.v1.train.AdagradOptimizer(
      params.get("learning_rate", 0.2))
  # Batch-norm statistics of a trainable module arrive in UPDATE_OPS.
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    train_op = optimizer.minimize(
        loss, global_step=tf.compat.v1.train.get_global_step())
  return _tf_estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def module_scope(use_feature_column: bool = True) -> str:
  """Scope of the module's variables in the training checkpoints."""
  if use_feature_column:
    return COLUMN_SCOPE + "/module"
  return DIRECT_MODULE_NAME


def train_input_fn(num_examples: int, seed: int, batch_size: int = 32):
  """Returns an input_fn over a shuffled, repeated synthetic training set."""
  def input_fn():
    sentences, labels = make_sentences(num_examples, seed)
    data = tf.data.Dataset.from_tensor_slices(
        ({FEATURE_KEY: sentences}, labels))
    return data.shuffle(num_examples, seed=seed).repeat().batch(batch_size)
  return input_fn


def eval_input_fn(num_examples: int, seed: int, batch_size: int = 64):
  """Returns an input_fn over one pass of a synthetic evaluation set."""
  def input_fn():
    sentences, labels = make_sentences(num_examples, seed)
    data = tf.data.Dataset.from_tensor_slices(
        ({FEATURE_KEY: sentences}, labels))
    return data.batch(batch_size)
  return input_fn


def serving_input_fn():
  """Raw-string serving input: a batch of sentences."""
  text = tf.compat.v1.placeholder(tf.string, [None], name="text")
  return _tf_estimator.export.ServingInputReceiver({FEATURE_KEY: text},
                                                   {FEATURE_KEY: text})


class ProgressHook(tf.compat.v1.train.SessionRunHook):
  """Logs progress lines for the cluster tests; can slow down or stop early.

  Lines look like `HUB_DEMO_EVENT task=worker:1 event=step global_step=40`;
  `event=session` is logged once the session exists (after a chief's restore
  from a checkpoint, so it shows the step it resumed from).
  """

  def __init__(self, task: str, every_n_steps: int = 10,
               step_delay_secs: float = 0.0,
               stop_at_step: Optional[int] = None):
    self._task = task
    self._every_n_steps = max(1, every_n_steps)
    self._step_delay_secs = step_delay_secs
    self._stop_at_step = stop_at_step
    self._global_step = None
    self._local_steps = 0

  def _event(self, event: str, step: int) -> None:
    logging.info("%s task=%s event=%s global_step=%d", EVENT_PREFIX,
                 self._task, event, step)

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()

  def after_create_session(self, session, coord):
    step = int(session.run(self._global_step))
    self._event("session", step)
    if (self._stop_at_step is not None and step >= self._stop_at_step and
        coord is not None):
      # Joined too late: leave the remaining steps to the chief.
      self._event("early_stop", step)
      coord.request_stop()

  def end(self, session):
    logging.info("%s task=%s event=end local_steps=%d global_step=%d",
                 EVENT_PREFIX, self._task, self._local_steps,
                 int(session.run(self._global_step)))

  def before_run(self, run_context):
    return tf.compat.v1.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    step = int(run_values.results)
    self._local_steps += 1
    if self._local_steps % self._every_n_steps == 0:
      self._event("step", step)
    if self._stop_at_step is not None and step >= self._stop_at_step:
      self._event("early_stop", step)
      run_context.request_stop()
    if self._step_delay_secs:
      time.sleep(self._step_delay_secs)


@dataclasses.dataclass
class TrainingConfig:
  """Everything `run_train_and_evaluate` needs (flag values of trainer.py)."""
  module_path: str
  model_dir: str
  max_steps: int = 300
  use_feature_column: bool = True
  learning_rate: float = 0.2
  save_checkpoints_steps: int = 50
  eval_throttle_secs: int = 2
  eval_steps: Optional[int] = None
  exports_to_keep: int = 3
  num_train_examples: int = 2000
  num_eval_examples: int = 400
  seed: int = 1
  # Trainer behaviour used by the cluster tests.
  step_delay_secs: float = 0.0
  # Non-chief workers stop this many steps before max_steps, so that the chief
  # alone takes the last steps and writes the one final checkpoint.
  worker_stop_margin: int = 20
  progress_every_n_steps: int = 10


def make_estimator(cfg: TrainingConfig,
                   run_config: Optional[Any] = None) -> Any:
  """The demo Estimator (RunConfig reads TF_CONFIG when it is set)."""
  if run_config is None:
    run_config = _tf_estimator.RunConfig(
        model_dir=cfg.model_dir,
        tf_random_seed=cfg.seed,
        save_checkpoints_steps=cfg.save_checkpoints_steps,
        keep_checkpoint_max=100,
        log_step_count_steps=max(cfg.save_checkpoints_steps, 10),
        save_summary_steps=cfg.save_checkpoints_steps,
        experimental_max_worker_delay_secs=2)
  params = dict(module_path=cfg.module_path,
                use_feature_column=cfg.use_feature_column,
                learning_rate=cfg.learning_rate, hidden_units=(16,))
  return _tf_estimator.Estimator(model_fn=model_fn, config=run_config,
                                 params=params)


def run_train_and_evaluate(cfg: TrainingConfig) -> Tuple[Any, Any]:
  """Runs `train_and_evaluate`, locally or as the TF_CONFIG task.

  Returns:
    What `train_and_evaluate` returns: (metrics, export results) in local
    mode, None for distributed tasks.
  """
  estimator = make_estimator(cfg)
  config = estimator.config
  task = "%s:%d" % (config.task_type or "local", config.task_id or 0)
  stop_at = None
  if config.task_type == "worker" and not config.is_chief:  # Cluster worker.
    stop_at = max(1, cfg.max_steps - cfg.worker_stop_margin)
  hooks = [ProgressHook(task, cfg.progress_every_n_steps, cfg.step_delay_secs,
                        stop_at_step=stop_at)]
  train_spec = _tf_estimator.TrainSpec(
      input_fn=train_input_fn(cfg.num_train_examples,
                              cfg.seed + (config.task_id or 0) +
                              (100 if config.task_type == "worker" else 0)),
      max_steps=cfg.max_steps, hooks=hooks)
  eval_spec = _tf_estimator.EvalSpec(
      input_fn=eval_input_fn(cfg.num_eval_examples, cfg.seed + 1000),
      steps=cfg.eval_steps,
      exporters=[exporter_lib.LatestModuleExporter(
          EXPORTER_NAME, serving_input_fn,
          exports_to_keep=cfg.exports_to_keep)],
      start_delay_secs=0,
      throttle_secs=cfg.eval_throttle_secs)
  logging.info("%s task=%s event=start", EVENT_PREFIX, task)
  result = _tf_estimator.train_and_evaluate(estimator, train_spec, eval_spec)
  logging.info("%s task=%s event=done", EVENT_PREFIX, task)
  return result


def module_variable_devices(model_dir: str,
                            scope: str) -> Dict[str, str]:
  """Devices of the variable ops under `scope` in the chief's training graph.

  Reads `<model_dir>/graph.pbtxt`, which the chief writes when its session
  starts; keys are op names relative to `scope` (`embeddings/part_0`).
  """
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  graph_def = tf.compat.v1.GraphDef()
  with tf.io.gfile.GFile(os.path.join(model_dir, "graph.pbtxt")) as f:
    text_format.Parse(f.read(), graph_def)
  prefix = scope.rstrip("/") + "/"
  return {node.name[len(prefix):]: node.device
          for node in graph_def.node
          if node.name.startswith(prefix) and
          node.op in ("VarHandleOp", "VariableV2")}


def export_base(model_dir: str) -> str:
  """Where `train_and_evaluate` lets the demo's exporter write."""
  return os.path.join(model_dir, "export", EXPORTER_NAME)


def list_exports(model_dir: str) -> List[str]:
  """Timestamped export directories, oldest first."""
  base = export_base(model_dir)
  if not tf.io.gfile.isdir(base):
    return []
  names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(base)
                 if exporter_lib.is_export_dir_name(n))
  return [os.path.join(base, n) for n in names]
