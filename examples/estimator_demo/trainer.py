"""The program every task of the demo cluster runs.

  TF_CONFIG=... python -m examples.estimator_demo.trainer \
      --module_path=DIR --model_dir=DIR [--max_steps=N ...]

It calls `tf.estimator.train_and_evaluate` on the demo model
(model.py): with TF_CONFIG set, the Estimator's RunConfig makes this
process the chief, a worker, a parameter server or the evaluator of the
cluster; without it, training and evaluation run in this one process.
"""

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from examples.estimator_demo import model as demo_model

_DEFAULTS = demo_model.TrainingConfig(module_path="", model_dir="")

_MODULE_PATH = flags.DEFINE_string(
    "module_path", None, "The hub module to fine-tune.", required=True)
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Estimator model directory (shared by all tasks).",
    required=True)
_MAX_STEPS = flags.DEFINE_integer("max_steps", _DEFAULTS.max_steps,
                                  "Global training steps.")
_USE_FEATURE_COLUMN = flags.DEFINE_boolean(
    "use_feature_column", _DEFAULTS.use_feature_column,
    "Use text_embedding_column (else hub.Module with tags={'train'}).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate,
                                    "Adagrad learning rate.")
_SAVE_CHECKPOINTS_STEPS = flags.DEFINE_integer(
    "save_checkpoints_steps", _DEFAULTS.save_checkpoints_steps,
    "Chief checkpoint interval in global steps.")
_EVAL_THROTTLE_SECS = flags.DEFINE_integer(
    "eval_throttle_secs", _DEFAULTS.eval_throttle_secs,
    "Minimum seconds between evaluations.")
_EXPORTS_TO_KEEP = flags.DEFINE_integer(
    "exports_to_keep", _DEFAULTS.exports_to_keep,
    "Timestamped module exports to keep.")
_SEED = flags.DEFINE_integer("seed", _DEFAULTS.seed, "Data and graph seed.")
_STEP_DELAY_SECS = flags.DEFINE_float(
    "step_delay_secs", _DEFAULTS.step_delay_secs,
    "Sleep after every training step (makes room for fault injection).")
_WORKER_STOP_MARGIN = flags.DEFINE_integer(
    "worker_stop_margin", _DEFAULTS.worker_stop_margin,
    "Non-chief workers stop this many steps before max_steps.")
_PROGRESS_EVERY_N_STEPS = flags.DEFINE_integer(
    "progress_every_n_steps", _DEFAULTS.progress_every_n_steps,
    "Log a progress event every this many local steps.")


def config_from_flags() -> demo_model.TrainingConfig:
  return demo_model.TrainingConfig(
      module_path=_MODULE_PATH.value,
      model_dir=_MODEL_DIR.value,
      max_steps=_MAX_STEPS.value,
      use_feature_column=_USE_FEATURE_COLUMN.value,
      learning_rate=_LEARNING_RATE.value,
      save_checkpoints_steps=_SAVE_CHECKPOINTS_STEPS.value,
      eval_throttle_secs=_EVAL_THROTTLE_SECS.value,
      exports_to_keep=_EXPORTS_TO_KEEP.value,
      seed=_SEED.value,
      step_delay_secs=_STEP_DELAY_SECS.value,
      worker_stop_margin=_WORKER_STOP_MARGIN.value,
      progress_every_n_steps=_PROGRESS_EVERY_N_STEPS.value)


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  # One line per message: TensorFlow's logger has a handler of its own that
  # would repeat, in another format, every line absl's handler prints.
  tf_logger = tf.get_logger()
  for handler in list(tf_logger.handlers):
    tf_logger.removeHandler(handler)
  demo_model.run_train_and_evaluate(config_from_flags())


if __name__ == "__main__":
  app.run(main)
