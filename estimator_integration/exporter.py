"""Exporting hub modules from Estimator checkpoints.

`register_module_for_export` marks a `hub_tf1.Module` built by a `model_fn`;
`LatestModuleExporter` (an Estimator `Exporter`, for `EvalSpec(exporters=...)`)
rebuilds the PREDICT graph, restores a checkpoint into it and writes every
marked module, with its trained variable values, as a TF1 Hub module under
`<export_path>/<timestamp>/<export_name>`.  Beyond tensorflow_hub, it also
writes the modules that hub feature columns built (canned Estimators, where
no `model_fn` can register anything), each named after its column
(`column_modules`).

Unlike tensorflow_hub, the timestamped directory is made visible by one rename
of a fully written temporary directory (`<timestamp>.partial-<random>`, a name
neither the garbage collector nor TF Serving treats as an export), and the
temporary directory is removed when an export fails: readers never see a
partial export.  Only a process killed in the middle of an export leaves its
temporary directory behind.
"""

import os
import time
from typing import Any, Callable, List, Optional, Tuple, Union

from absl import logging
import tensorflow as tf

from estimator_integration import _estimator_api
from estimator_integration import column_modules
from hub_tf1 import fileio

_tf_estimator = _estimator_api.estimator_v1()

# Graph collection of `(export_name, module)` pairs.  A tuple key (instead of a
# string) keeps it out of `get_all_collection_keys()` and thus out of any
# exported MetaGraphDef; the value is the one tensorflow_hub uses.
EXPORT_MODULES_COLLECTION = ("__tfhub_export_modules",)

# Export directories are named by `int(time.time())`: 10 digits until 2286.
_TIMESTAMP_DIGITS = 10
_MAX_TIMESTAMP_ATTEMPTS = 10


def register_module_for_export(module: Any, export_name: str) -> None:
  """Marks `module` to be written by `LatestModuleExporter` as `export_name`.

  The registration lives in the current default graph, so it must happen in
  the `model_fn` (the exporter rebuilds the graph in PREDICT mode).

  Args:
    module: a `hub_tf1.Module` of the current graph.
    export_name: sub-directory of the export directory for this module; unique
      per graph.  It does not affect variable or op names.

  Registering, under the same name, the Module of another replica of a
  replicated model (which shares the first replica's state) does nothing.

  Raises:
    ValueError: `export_name` is already registered in the current graph
      (for a Module with another state).
  """
  for used_name, used in tf.compat.v1.get_collection(
      EXPORT_MODULES_COLLECTION):
    if used_name == export_name:
      if (getattr(module, "reuses_state", False) and
          module.shares_state_with(used)):
        return
      raise ValueError(
          "There is already a module registered to be exported as %r" %
          export_name)
  tf.compat.v1.add_to_collection(EXPORT_MODULES_COLLECTION,
                                 (export_name, module))


def registered_modules(
    graph: Optional[tf.Graph] = None) -> List[Tuple[str, Any]]:
  """The `(export_name, module)` pairs registered in `graph` (or default)."""
  graph = graph or tf.compat.v1.get_default_graph()
  return list(graph.get_collection(EXPORT_MODULES_COLLECTION))


def modules_to_export(
    graph: Optional[tf.Graph] = None) -> List[Tuple[str, Any]]:
  """The registered modules, then those of hub feature columns.

  A feature column's module that is also registered is exported once, under
  its registered name; a column's name that a registration already uses
  gets a "_<n>" suffix.

  Args:
    graph: default: the current default graph.

  Returns:
    `(export_name, module)` pairs with unique names.
  """
  modules = registered_modules(graph)
  names = {name for name, _ in modules}
  registered = {id(module) for _, module in modules}
  for name, module in column_modules.recorded(graph):
    if id(module) in registered:
      continue
    unique, n = name, 1
    while unique in names:
      unique, n = "%s_%d" % (name, n), n + 1
    names.add(unique)
    modules.append((unique, module))
  return modules


def _str_path(path: Union[str, bytes]) -> str:
  return tf.compat.as_str_any(path)


def new_export_dir(export_path: Union[str, bytes]) -> str:
  """`<export_path>/<epoch seconds>` that does not exist yet.

  Waits a second and retries while the name is taken (two exports within the
  same second).

  Raises:
    RuntimeError: no free name after `_MAX_TIMESTAMP_ATTEMPTS` seconds.
  """
  export_path = _str_path(export_path)
  for attempt in range(1, _MAX_TIMESTAMP_ATTEMPTS + 1):
    candidate = os.path.join(export_path, str(int(time.time())))
    if not tf.io.gfile.exists(candidate):
      return candidate
    logging.warning("Export directory %s already exists; retrying (%d/%d).",
                    candidate, attempt, _MAX_TIMESTAMP_ATTEMPTS)
    time.sleep(1)
  raise RuntimeError(
      "Failed to obtain a unique export directory name after %d attempts "
      "(timestamped directories under %s)." % (_MAX_TIMESTAMP_ATTEMPTS,
                                                 export_path))


def is_export_dir_name(name: Union[str, bytes]) -> bool:
  """Whether `name` is a timestamped export directory name (10 digits)."""
  name = _str_path(name).rstrip("/")
  return len(name) == _TIMESTAMP_DIGITS and name.isdigit()


def garbage_collect_exports(export_path: Union[str, bytes],
                            exports_to_keep: Optional[int]) -> List[str]:
  """Deletes all but the newest `exports_to_keep` timestamped exports.

  Only entries named by exactly 10 digits are considered; temporary
  directories and anything else a user put there are left alone.

  Returns:
    The deleted paths.
  """
  if exports_to_keep is None:
    return []
  export_path = _str_path(export_path)
  versions = []
  for name in tf.io.gfile.listdir(export_path):
    if is_export_dir_name(name):
      name = name.rstrip("/")
      versions.append((int(name), os.path.join(export_path, name)))
  versions.sort()
  deleted = []
  for _, path in versions[:-exports_to_keep]:
    try:
      tf.io.gfile.rmtree(path)
      deleted.append(path)
    except tf.errors.NotFoundError as e:
      logging.warning("Could not delete old export %s: %s", path, e)
  return deleted


class LatestModuleExporter(_tf_estimator.Exporter):
  """Exports the registered modules after each evaluation.

  Use it in `tf.estimator.EvalSpec(exporters=[...])`: after every evaluation of
  a new checkpoint, `train_and_evaluate` calls `export()` with
  `export_path=<model_dir>/export/<name>`, and every module registered with
  `register_module_for_export` in the `model_fn` is written to
  `<export_path>/<timestamp>/<export_name>`.  Only the newest
  `exports_to_keep` timestamped directories are kept.
  """

  def __init__(self,
               name: str,
               serving_input_fn: Callable[[], Any],
               exports_to_keep: Optional[int] = 5):
    """Creates the exporter.

    Args:
      name: name of this exporter; `train_and_evaluate` uses it as the last
        component of the export path.
      serving_input_fn: no-argument function returning a
        `ServingInputReceiver`; its features feed the PREDICT-mode graph from
        which modules are exported (the graph is never run, so only the
        feature structure matters).
      exports_to_keep: how many timestamped exports to keep; None keeps all.

    Raises:
      ValueError: `exports_to_keep` is not None and not positive.
    """
    if exports_to_keep is not None and exports_to_keep <= 0:
      raise ValueError(
          "`exports_to_keep`, if provided, must be a positive number; got %r" %
          (exports_to_keep,))
    self._name = name
    self._serving_input_fn = serving_input_fn
    self._exports_to_keep = exports_to_keep

  @property
  def name(self) -> str:
    """The exporter's name (the export subdirectory for Estimators)."""
    return self._name

  def export(self,
             estimator: Any,
             export_path: Union[str, bytes],
             checkpoint_path: Optional[str] = None,
             eval_result: Any = None,
             is_the_final_export: Optional[bool] = None) -> Optional[bytes]:
    """Writes the registered modules from a checkpoint of `estimator`.

    Args:
      estimator: the `tf.estimator.Estimator` whose `model_fn` registers the
        modules.
      export_path: directory that receives the timestamped exports.
      checkpoint_path: checkpoint to export; default: the estimator's latest.
      eval_result: ignored (every call exports).
      is_the_final_export: ignored.

    Returns:
      The timestamped export directory as bytes, or None when the PREDICT
      graph has no module to export, registered or built by a hub feature
      column (a warning is logged, nothing is written).

    Raises:
      ValueError: there is no checkpoint to export.
    """
    del eval_result, is_the_final_export  # Every call exports.
    if checkpoint_path is None:
      checkpoint_path = estimator.latest_checkpoint()
    if not checkpoint_path:
      raise ValueError(
          "LatestModuleExporter: no checkpoint to export from (the estimator "
          "in %s has not saved one yet)." % estimator.model_dir)
    export_path = _str_path(export_path)

    graph = tf.Graph()
    with graph.as_default():
      estimator_spec = self._build_predict_graph(estimator)
      modules = modules_to_export(graph)
      if not modules:
        logging.warning(
            "LatestModuleExporter found no module to export. Call "
            "hub.register_module_for_export(module, export_name) in the "
            "model_fn for each hub.Module that should be exported, or use "
            "hub feature columns.")
        return None
      # A plain Session: Module.export() needs a real session for its Saver,
      # which a MonitoredSession is not.
      session = tf.compat.v1.Session(
          config=estimator._session_config)  # pylint: disable=protected-access
      with session:
        saver = (estimator_spec.scaffold.saver or
                 tf.compat.v1.train.Saver(sharded=True))
        saver.restore(session, checkpoint_path)
        export_dir = new_export_dir(export_path)
        with fileio.atomic_directory(export_dir) as temp_dir:
          for export_name, module in modules:
            module.export(
                os.path.join(temp_dir, tf.compat.as_str_any(export_name)),
                session)
    logging.info("Exported %d module(s) from %s to %s", len(modules),
                 checkpoint_path, export_dir)
    garbage_collect_exports(export_path, self._exports_to_keep)
    return tf.compat.as_bytes(export_dir)

  def _build_predict_graph(self, estimator: Any) -> Any:
    """Calls the estimator's model_fn in PREDICT mode in the default graph."""
    tf.compat.v1.train.create_global_step()
    tf.compat.v1.set_random_seed(estimator.config.tf_random_seed)
    receiver = self._serving_input_fn()
    return estimator.model_fn(
        features=receiver.features,
        labels=None,
        mode=_tf_estimator.ModeKeys.PREDICT,
        config=estimator.config)
