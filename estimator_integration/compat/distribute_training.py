"""Stand-in for `tensorflow.python.distribute.estimator_training` (gone in 2.16).

The Estimator calls five functions of that module: `init_run_config` from
`RunConfig.__init__` when a distribution strategy is given,
`should_run_distribute_coordinator` and `train_and_evaluate` from
`tf.estimator.train_and_evaluate`, and `estimator_train` /
`estimator_evaluate` from `Estimator.train` / `evaluate` under a strategy in
standalone-client mode.  What they must do was read from TF 2.15's behaviour
and written here anew on top of `distribute_coordinator`, which TF 2.21 still
ships.  All private TensorFlow access of this layer is in this file.

Rules of this file: the functions keep the names and arguments the Estimator
calls; RunConfig's private fields are set exactly where TF 2.15 set them.
"""

import copy
import types

from absl import logging
# pylint: disable=g-direct-tensorflow-import
from tensorflow.python.distribute import distribute_coordinator as _dc
from tensorflow.python.distribute import distribute_coordinator_context as _dc_context
from tensorflow.python.distribute import multi_worker_util
from tensorflow.python.training import server_lib
# pylint: enable=g-direct-tensorflow-import

# pylint: disable=protected-access
CHIEF = _dc._TaskType.CHIEF
EVALUATOR = _dc._TaskType.EVALUATOR
PS = _dc._TaskType.PS
WORKER = _dc._TaskType.WORKER
_MODES = (_dc.CoordinatorMode.STANDALONE_CLIENT,
          _dc.CoordinatorMode.INDEPENDENT_WORKER)


def _global_id(cluster_spec, task_type, task_id) -> int:
  """Index of a task in the order chief, other jobs (sorted), ps."""
  if not task_type:
    return 0
  jobs = sorted(cluster_spec.jobs)
  ordered = ([CHIEF] if CHIEF in jobs else []) + [
      j for j in jobs if j not in (CHIEF, PS)] + ([PS] if PS in jobs else [])
  offset = 0
  for job in ordered:
    if job == task_type:
      return offset + task_id
    offset += len(cluster_spec.job_tasks(job))
  raise RuntimeError("task type %r is not in the cluster %s" %
                     (task_type, cluster_spec))


def _config_from_worker_context(config, context) -> None:
  """Sets a RunConfig's cluster fields from a coordinator worker context."""
  config._service = None
  config._cluster_spec = context.cluster_spec
  config._task_type = context.task_type
  config._task_id = context.task_id
  config._master = config._evaluation_master = context.master_target
  config._is_chief = context.is_chief
  spec = config._cluster_spec
  if not spec:
    config._global_id_in_cluster = 0
    config._num_ps_replicas = 0
    config._num_worker_replicas = 1
  elif config._task_type == EVALUATOR:
    # The evaluator sees no other task.
    config._cluster_spec = server_lib.ClusterSpec({})
    config._num_ps_replicas = config._num_worker_replicas = 0
    config._global_id_in_cluster = None
  else:
    jobs = spec.as_dict()
    config._num_ps_replicas = len(jobs.get(PS, []))
    config._num_worker_replicas = (len(jobs.get(WORKER, [])) +
                                   len(jobs.get(CHIEF, [])))
    config._global_id_in_cluster = _global_id(spec, config._task_type,
                                              config._task_id)


def _take_experimental(config, field: str) -> None:
  experimental = config._experimental_distribute
  value = getattr(experimental, field, None) if experimental else None
  if value is None:
    return
  if getattr(config, "_" + field):
    raise ValueError("Set either `%s` or `experimental_distribute.%s`, not "
                     "both." % (field, field))
  setattr(config, "_" + field, value)


def init_run_config(config, tf_config) -> None:
  """RunConfig set-up when a distribution strategy is given."""
  _take_experimental(config, "train_distribute")
  _take_experimental(config, "eval_distribute")
  cluster_spec = server_lib.ClusterSpec(tf_config.get("cluster", {}))
  config._init_distributed_setting_from_environment_var({})
  experimental = config._experimental_distribute
  remote = getattr(experimental, "remote_cluster", None)
  if config._train_distribute and remote:
    if cluster_spec:
      raise ValueError("TF_CONFIG has a cluster and "
                       "`experimental_distribute.remote_cluster` is set; "
                       "give only one.")
    config._distribute_coordinator_mode = _dc.CoordinatorMode.STANDALONE_CLIENT
    config._cluster_spec = remote
    return
  if (not cluster_spec or "master" in cluster_spec.jobs or
      not config._train_distribute):
    # Local training, a "master" cluster, or no training strategy: the
    # Estimator's own between-graph set-up, no coordinator.
    config._distribute_coordinator_mode = None
    config._init_distributed_setting_from_environment_var(tf_config)
    config._maybe_overwrite_session_config_for_distributed_training()
    return
  config._cluster_spec = cluster_spec
  config._distribute_coordinator_mode = _dc.CoordinatorMode.INDEPENDENT_WORKER


def should_run_distribute_coordinator(config) -> bool:
  """Whether `train_and_evaluate` goes through the distribute coordinator."""
  mode = getattr(config, "_distribute_coordinator_mode", None)
  if mode is None:
    return False
  if mode not in _MODES:
    logging.warning("Unknown distribute coordinator mode %r; not using it.",
                    mode)
    return False
  if not config.cluster_spec:
    logging.warning("No cluster: running train_and_evaluate locally.")
    return False
  return True


def _local_copy(estimator, context, **fields):
  """A deep copy of `estimator` configured for one coordinator task."""
  local = copy.deepcopy(estimator)
  for name, value in fields.items():
    setattr(local._config, name, value)
  _config_from_worker_context(local._config, context)
  # The copy must not enter the coordinator again.
  local._config._distribute_coordinator_mode = None
  return local


def train_and_evaluate(estimator, train_spec, eval_spec, executor_cls) -> None:
  """`tf.estimator.train_and_evaluate` through the distribute coordinator."""
  config = estimator.config
  mode = config._distribute_coordinator_mode
  if not mode:
    raise ValueError("RunConfig has no distribute coordinator mode.")

  def worker_fn(strategy):
    context = _dc_context.get_current_worker_context()
    local = _local_copy(estimator, context, _train_distribute=strategy)
    local._train_distribution = strategy
    all_hooks = (mode == _dc.CoordinatorMode.INDEPENDENT_WORKER or
                 context.is_chief)
    local.train(input_fn=train_spec.input_fn, max_steps=train_spec.max_steps,
                hooks=list(train_spec.hooks) if all_hooks else [])

  def eval_fn(strategy):
    context = _dc_context.get_current_worker_context()
    local = _local_copy(estimator, context, _eval_distribute=strategy)
    local._eval_distribution = strategy
    executor_cls(local, train_spec, eval_spec)._start_continuous_evaluation()

  standalone = mode == _dc.CoordinatorMode.STANDALONE_CLIENT
  _dc.run_distribute_coordinator(
      worker_fn, config.train_distribute, eval_fn, config.eval_distribute,
      mode=mode, cluster_spec=config.cluster_spec if standalone else None,
      session_config=config.session_config)


def _standalone_run(estimator, strategy, distributed_fn, hooks, what: str):
  config = estimator._config
  cluster_spec = multi_worker_util.normalize_cluster_spec(config.cluster_spec)
  if "evaluator" in cluster_spec.jobs:
    raise ValueError("An 'evaluator' job needs `train_and_evaluate`, not "
                     "`Estimator.%s`." % what)
  if config._distribute_coordinator_mode != (
      _dc.CoordinatorMode.STANDALONE_CLIENT):
    raise ValueError("`Estimator.%s` under a distribute coordinator supports "
                     "only STANDALONE_CLIENT mode." % what)
  if strategy.extended.experimental_between_graph:
    raise ValueError("`Estimator.%s` does not support %s in STANDALONE_CLIENT "
                     "mode." % (what, type(strategy).__name__))
  field = "_train_distribute" if what == "train" else "_eval_distribute"
  attr = "_train_distribution" if what == "train" else "_eval_distribution"

  def worker_fn(worker_strategy):
    context = _dc_context.get_current_worker_context()
    local = _local_copy(estimator, context, **{field: worker_strategy})
    setattr(local, attr, worker_strategy)
    result = distributed_fn(local, worker_strategy,
                            hooks if context.is_chief else [])
    return local if what == "train" else result

  return _dc.run_distribute_coordinator(
      worker_fn, strategy, mode=config._distribute_coordinator_mode,
      cluster_spec=cluster_spec, session_config=config.session_config)


def estimator_train(estimator, train_distributed_fn, hooks):
  """`Estimator.train` under a strategy in standalone-client mode."""
  return _standalone_run(estimator, estimator._config._train_distribute,
                         train_distributed_fn, hooks, "train")


def estimator_evaluate(estimator, evaluate_distributed_fn, hooks):
  """`Estimator.evaluate` under a strategy in standalone-client mode."""
  return _standalone_run(estimator, estimator._config._eval_distribute,
                         evaluate_distributed_fn, hooks, "evaluate")


def as_module() -> types.ModuleType:
  """This file's functions as a module object for `sys.modules`."""
  module = types.ModuleType("tensorflow.python.distribute.estimator_training")
  for name in ("CHIEF", "EVALUATOR", "PS", "WORKER", "init_run_config",
               "should_run_distribute_coordinator", "train_and_evaluate",
               "estimator_train", "estimator_evaluate"):
    setattr(module, name, globals()[name])
  return module
