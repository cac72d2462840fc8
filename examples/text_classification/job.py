r"""A legacy text-classification job: TF1 Hub modules with tf.estimator.

Written against the TF1 API of tensorflow_hub 0.15 and the Estimator; the one
line that differs from such a job is the import of `hub` (see README.md next
to this file).  Three modes, chosen with --mode:

* make_module: builds a small text-embedding module with
  `hub.create_module_spec` (a vocabulary file asset, a lookup table and an
  embedding variable partitioned over --embedding_partitions parts; the
  {"train"} variant adds dropout) and exports it to --module_dir.
* canned: `tf.estimator.DNNClassifier` over
  `hub.text_embedding_column(...)`, exporting a SavedModel with
  `tf.estimator.LatestExporter`.
* custom: a `model_fn` that fine-tunes `hub.Module(..., trainable=True,
  tags={"train"})`, registers it for export and writes updated modules with
  `hub.LatestModuleExporter`.

canned and custom call `tf.estimator.train_and_evaluate`, so the same command
runs in one process or, with TF_CONFIG set, as one task of a
parameter-server cluster.  The data are a deterministic synthetic sentiment
set (sentences of neutral words plus positive or negative ones).

The last stdout line of the local process, the chief and the evaluator is
one JSON object: task, global_step, eval metrics (the latest evaluation
found in <model_dir>/eval), export directories.

Rules of this file: only public TF1-era APIs a tensorflow_hub 0.15 job would
use; files it writes itself (the vocabulary) are written to a temporary name
and renamed into place.
"""

import json
import os
import random
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf
import hub_tf1 as hub  # was: import tensorflow_hub as hub

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "canned", ["make_module", "canned", "custom"],
                  "What to do: build the module, or train a classifier.")
flags.DEFINE_enum("canned_estimator", "dnn",
                  ["dnn", "dnn_linear_combined", "linear"],
                  "canned: DNNClassifier, DNNLinearCombinedClassifier (the "
                  "text column in both parts) or LinearClassifier.")
flags.DEFINE_string("module_dir", None,
                    "Where make_module writes the module; canned and custom "
                    "read it from here.", required=True)
flags.DEFINE_string("model_dir", None,
                    "Estimator model directory (canned, custom).")
flags.DEFINE_integer("max_steps", 200, "Global training steps.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("train_examples", 2000, "Synthetic training examples.")
flags.DEFINE_integer("eval_examples", 500, "Synthetic evaluation examples.")
flags.DEFINE_integer("seed", 1, "Data seed (evaluation uses seed + 1).")
flags.DEFINE_float("learning_rate", 0.1,
                   "Adagrad learning rate of the custom model_fn.")
flags.DEFINE_boolean("trainable", True,
                     "canned: whether text_embedding_column fine-tunes the "
                     "module.")
flags.DEFINE_integer("save_checkpoints_steps", 50,
                     "Checkpoint interval in global steps.")
flags.DEFINE_integer("throttle_secs", 1,
                     "Minimum seconds between evaluations.")
flags.DEFINE_integer("embedding_dim", 16, "make_module: embedding size.")
flags.DEFINE_integer("embedding_partitions", 2,
                     "make_module: parts of the embedding variable.")
flags.DEFINE_float("dropout_rate", 0.1,
                   "make_module: dropout of the {'train'} variant.")

FEATURE = "sentence"
MODULE_EXPORT_NAME = "text"
NUM_OOV_BUCKETS = 1

POSITIVE = ("good", "great", "wonderful", "superb", "enjoyable", "charming",
            "gripping", "fine")
NEGATIVE = ("bad", "awful", "dreadful", "tedious", "weak", "clumsy",
            "boring", "painful")
NEUTRAL = ("the", "a", "film", "movie", "story", "acting", "was", "is",
           "very", "rather", "quite", "and", "plot", "music", "ending", "it",
           "this", "of", "director", "cast")


# ----------------------------------------------------------------- the data


def make_examples(num_examples: int, seed: int) -> Tuple[List[str],
                                                         np.ndarray]:
  """A reproducible, separable sentiment set: (sentences, int64 labels)."""
  rng = random.Random(seed)
  sentences, labels = [], []
  for _ in range(num_examples):
    label = rng.randint(0, 1)
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 8))]
    words += [rng.choice(POSITIVE if label else NEGATIVE)
              for _ in range(rng.randint(1, 2))]
    rng.shuffle(words)
    sentences.append(" ".join(words))
    labels.append(label)
  return sentences, np.array(labels, dtype=np.int64)


def train_input_fn():
  sentences, labels = make_examples(FLAGS.train_examples, FLAGS.seed)
  dataset = tf.data.Dataset.from_tensor_slices(({FEATURE: sentences}, labels))
  return dataset.shuffle(len(sentences), seed=FLAGS.seed).repeat().batch(
      FLAGS.batch_size)


def eval_input_fn():
  sentences, labels = make_examples(FLAGS.eval_examples, FLAGS.seed + 1)
  dataset = tf.data.Dataset.from_tensor_slices(({FEATURE: sentences}, labels))
  return dataset.batch(100)


def serving_input_fn():
  """Serialized tf.Examples with one string feature, as the job serves."""
  return tf.estimator.export.build_parsing_serving_input_receiver_fn(
      {FEATURE: tf.io.FixedLenFeature([], tf.string)})()


# --------------------------------------------------------------- the module


def _write_vocabulary(path: str, words: Sequence[str]) -> None:
  """One word per line, written to a temporary name and renamed into place."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  temp = "%s.tmp-%s" % (path, uuid.uuid4().hex)
  with tf.io.gfile.GFile(temp, "w") as f:
    f.write("".join(word + "\n" for word in words))
  tf.io.gfile.rename(temp, path, overwrite=True)


def _pretrained_initializer(vocabulary: Sequence[str]):
  """Initial embeddings standing in for pre-training (one OOV row at the end).

  Small random rows plus a sentiment direction on the first axis, so that a
  classifier over the frozen module already learns something and fine-tuning
  improves on it.  Works per part of a partitioned variable.
  """
  rng = np.random.RandomState(3)
  table = rng.normal(0.0, 0.2, [len(vocabulary) + NUM_OOV_BUCKETS,
                                FLAGS.embedding_dim]).astype(np.float32)
  for row, word in enumerate(vocabulary):
    if word in POSITIVE:
      table[row, 0] += 4.0
    elif word in NEGATIVE:
      table[row, 0] -= 4.0
  def initializer(shape, dtype=tf.float32, partition_info=None):
    start = partition_info.var_offset[0] if partition_info else 0
    return tf.constant(table[start:start + shape[0]], dtype=dtype)
  return initializer


def text_module_fn(vocabulary_file: str, vocabulary: Sequence[str],
                   is_training: bool) -> None:
  """Sentences -> sqrtn-combined word embeddings (dropout when training)."""
  sentences = tf.compat.v1.placeholder(tf.string, shape=[None])
  table = tf.compat.v1.lookup.StaticVocabularyTable(
      tf.compat.v1.lookup.TextFileInitializer(
          vocabulary_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
      num_oov_buckets=NUM_OOV_BUCKETS)
  embeddings = tf.compat.v1.get_variable(
      "embeddings", [len(vocabulary) + NUM_OOV_BUCKETS, FLAGS.embedding_dim],
      initializer=_pretrained_initializer(vocabulary),
      partitioner=tf.compat.v1.fixed_size_partitioner(
          FLAGS.embedding_partitions))
  words = tf.compat.v1.string_split(sentences, sep=" ")
  ids = tf.SparseTensor(words.indices, table.lookup(words.values),
                        words.dense_shape)
  vectors = tf.nn.safe_embedding_lookup_sparse(embeddings, ids,
                                               combiner="sqrtn")
  if is_training:
    vectors = tf.compat.v1.nn.dropout(vectors, rate=FLAGS.dropout_rate,
                                      seed=5)
  hub.add_signature(inputs=sentences, outputs=vectors)


def make_module() -> Dict[str, Any]:
  vocabulary = NEUTRAL + POSITIVE + NEGATIVE
  vocabulary_file = os.path.join(FLAGS.module_dir + ".build", "vocab.txt")
  _write_vocabulary(vocabulary_file, vocabulary)
  args = dict(vocabulary_file=vocabulary_file, vocabulary=vocabulary)
  spec = hub.create_module_spec(
      text_module_fn,
      tags_and_args=[(set(), dict(args, is_training=False)),
                     ({"train"}, dict(args, is_training=True))])
  with tf.Graph().as_default():
    module = hub.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(FLAGS.module_dir, session)
  return {"module_dir": FLAGS.module_dir,
          "tags": sorted(sorted(t) for t in spec.get_tags())}


# -------------------------------------------------------------- the models


def run_config() -> tf.estimator.RunConfig:
  return tf.estimator.RunConfig(
      model_dir=FLAGS.model_dir,
      save_checkpoints_steps=FLAGS.save_checkpoints_steps,
      tf_random_seed=FLAGS.seed,
      log_step_count_steps=50)


def canned_estimator() -> Tuple[tf.estimator.Estimator, List[Any]]:
  sentence = hub.text_embedding_column(
      FEATURE, module_spec=FLAGS.module_dir, trainable=FLAGS.trainable)
  if FLAGS.canned_estimator == "dnn":
    estimator = tf.estimator.DNNClassifier(
        hidden_units=[32, 16],
        feature_columns=[sentence],
        n_classes=2,
        optimizer="Adagrad",
        config=run_config())
  elif FLAGS.canned_estimator == "dnn_linear_combined":
    estimator = tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=[sentence],
        dnn_feature_columns=[sentence],
        dnn_hidden_units=[32, 16],
        n_classes=2,
        dnn_optimizer="Adagrad",
        config=run_config())
  else:
    estimator = tf.estimator.LinearClassifier(
        feature_columns=[sentence], n_classes=2, config=run_config())
  feature_spec = tf.feature_column.make_parse_example_spec([sentence])
  serving_input_fn = (
      tf.estimator.export.build_parsing_serving_input_receiver_fn(
          feature_spec))
  exporter = tf.estimator.LatestExporter("saved_model", serving_input_fn,
                                         exports_to_keep=2)
  # Writes the column's module where the library finds feature columns'
  # modules (tensorflow_hub 0.15 counts only model_fn registrations, so it
  # writes nothing here).
  module_exporter = hub.LatestModuleExporter("tf_hub", serving_input_fn,
                                             exports_to_keep=2)
  return estimator, [exporter, module_exporter]


def model_fn(features, labels, mode, params):
  """Fine-tunes the text module under a small dense head."""
  is_training = mode == tf.estimator.ModeKeys.TRAIN
  module = hub.Module(params["module_dir"], trainable=True,
                      tags={"train"} if is_training else None)
  hub.register_module_for_export(module, MODULE_EXPORT_NAME)
  embedding = module(features[FEATURE])
  hidden = tf.compat.v1.layers.dense(embedding, 32, activation=tf.nn.relu,
                                     name="hidden")
  logits = tf.compat.v1.layers.dense(hidden, 2, name="logits")
  classes = tf.argmax(logits, axis=1)
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(
        mode, predictions={"classes": classes,
                           "probabilities": tf.nn.softmax(logits)})
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  if mode == tf.estimator.ModeKeys.EVAL:
    return tf.estimator.EstimatorSpec(
        mode, loss=loss,
        eval_metric_ops={
            "accuracy": tf.compat.v1.metrics.accuracy(labels, classes)})
  optimizer = tf.compat.v1.train.AdagradOptimizer(params["learning_rate"])
  train_op = optimizer.minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def custom_estimator() -> Tuple[tf.estimator.Estimator, List[Any]]:
  estimator = tf.estimator.Estimator(
      model_fn=model_fn,
      params={"module_dir": FLAGS.module_dir,
              "learning_rate": FLAGS.learning_rate},
      config=run_config())
  exporter = hub.LatestModuleExporter("tf_hub", serving_input_fn,
                                      exports_to_keep=2)
  return estimator, [exporter]


# ------------------------------------------------------------- the results


def latest_eval_metrics(model_dir: str) -> Optional[Dict[str, float]]:
  """Scalars of the evaluation with the highest step in <model_dir>/eval."""
  eval_dir = os.path.join(model_dir, "eval")
  if not tf.io.gfile.isdir(eval_dir):
    return None
  best_step, metrics = -1, None
  for name in tf.io.gfile.listdir(eval_dir):
    if "tfevents" not in name:
      continue
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(eval_dir, name)):
      values = {v.tag: v.simple_value for v in event.summary.value
                if v.HasField("simple_value")}
      if "accuracy" in values and event.step >= best_step:
        best_step, metrics = event.step, dict(values, global_step=event.step)
  return metrics


def export_dirs(model_dir: str) -> List[str]:
  base = os.path.join(model_dir, "export")
  if not tf.io.gfile.isdir(base):
    return []
  found = []
  for exporter in sorted(tf.io.gfile.listdir(base)):
    exporter_dir = os.path.join(base, exporter.rstrip("/"))
    for name in sorted(tf.io.gfile.listdir(exporter_dir)):
      if name.rstrip("/").isdigit():
        found.append(os.path.join(exporter_dir, name.rstrip("/")))
  return found


def train() -> Optional[Dict[str, Any]]:
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required with --mode=%s" %
                         FLAGS.mode)
  if FLAGS.mode == "canned":
    estimator, exporters = canned_estimator()
  else:
    estimator, exporters = custom_estimator()
  train_spec = tf.estimator.TrainSpec(train_input_fn,
                                      max_steps=FLAGS.max_steps)
  eval_spec = tf.estimator.EvalSpec(eval_input_fn, steps=None,
                                    exporters=exporters, start_delay_secs=0,
                                    throttle_secs=FLAGS.throttle_secs)
  tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)

  task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
  task_type = task.get("type", "local")
  if task_type not in ("local", "chief", "evaluator"):
    return None
  checkpoint = tf.train.latest_checkpoint(FLAGS.model_dir)
  global_step = (int(tf.train.load_variable(checkpoint, "global_step"))
                 if checkpoint else None)
  return {"mode": FLAGS.mode, "task": task_type,
          "task_index": task.get("index", 0), "global_step": global_step,
          "eval": latest_eval_metrics(FLAGS.model_dir),
          "exports": export_dirs(FLAGS.model_dir),
          "tensorflow": tf.__version__,
          "keras": getattr(tf.keras, "__version__", None),
          "keras_module": tf.keras.__name__}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Unexpected arguments: %s" % argv[1:])
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
  if FLAGS.mode == "make_module":
    result = make_module()
  else:
    result = train()
  if result is not None:
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
  app.run(main)
