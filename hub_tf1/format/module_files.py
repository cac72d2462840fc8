"""Reading and writing the files of a module directory.

    <module_dir>/tfhub_module.pb     ModuleDef (format 3, no features)
    <module_dir>/saved_model.pb      SavedModel, one MetaGraphDef per tag set
    <module_dir>/variables/variables.{index,data-*}   V2 checkpoint
    <module_dir>/assets/             asset files

A module is written into a temporary sibling directory and renamed into
place, with `tfhub_module.pb` written last, so neither a crash nor a
concurrent reader ever sees a partial module at the final path.
"""

import copy
import os
from typing import Callable, Iterable, Optional

from absl import logging
import tensorflow as tf
from google.protobuf import message as proto_message
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from hub_tf1 import fileio
from hub_tf1.format import assets
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.format import protos

MODULE_DEF_FILENAME = "tfhub_module.pb"
SAVED_MODEL_FILENAME = "saved_model.pb"
VARIABLES_DIRNAME = "variables"
ASSETS_DIRNAME = "assets"

# Optional features this reader implements (none exist in the format yet).
SUPPORTED_FEATURES = frozenset()


def variables_prefix(module_dir: str) -> str:
  """The checkpoint prefix of a module's variables."""
  return os.path.join(module_dir, VARIABLES_DIRNAME, VARIABLES_DIRNAME)


def read_module_def(module_dir: str) -> "protos.ModuleDef":
  """Reads and checks `tfhub_module.pb`.

  Raises:
    tf.errors.NotFoundError: the file is missing (its path is the message).
    ValueError: unknown format version or unsupported required features.
  """
  path = os.path.join(module_dir, MODULE_DEF_FILENAME)
  data = tf.io.gfile.GFile(path, "rb").read()
  try:
    module_def = protos.ModuleDef.FromString(data)
  except proto_message.DecodeError as e:
    raise IOError("Cannot parse file %s: %s" % (path, e)) from e
  if module_def.format != protos.FORMAT_V3:
    raise ValueError("Unsupported module def format: %d (in %s; this reader "
                     "knows format %d)" % (module_def.format, path,
                                           protos.FORMAT_V3))
  unknown = sorted(set(module_def.required_features) - SUPPORTED_FEATURES)
  if unknown:
    raise ValueError("Unsupported features: %s (required by %s)"
                     % (unknown, path))
  return module_def


def read_saved_model(module_dir: str) -> saved_model_pb2.SavedModel:
  """Parses `saved_model.pb` and resolves each variant's asset paths.

  Raises:
    tf.errors.NotFoundError: the file is missing.
    IOError: the file is not a valid SavedModel proto (e.g. truncated).
    ValueError: repeated tag sets, bad asset entries.
  """
  path = os.path.join(module_dir, SAVED_MODEL_FILENAME)
  data = tf.io.gfile.GFile(path, "rb").read()
  saved_model = saved_model_pb2.SavedModel()
  try:
    saved_model.ParseFromString(data)
  except proto_message.DecodeError as e:
    raise IOError("Cannot parse file %s: %s" % (path, e)) from e
  if not saved_model.meta_graphs:
    raise IOError("File %s holds no graph." % path)
  meta_graph_lib.check_unique_tags(saved_model.meta_graphs)
  for meta_graph in saved_model.meta_graphs:
    assets.resolve_on_load(meta_graph, module_dir)
  return saved_model


def _serialize(message) -> bytes:
  return message.SerializeToString(deterministic=True)


def write_module(
    path: str,
    meta_graphs: Iterable[meta_graph_pb2.MetaGraphDef],
    save_variables: Optional[Callable[[str], None]] = None) -> None:
  """Writes a complete module directory at `path`, atomically.

  Args:
    path: the module directory to create; must not exist.
    meta_graphs: the graph variants, with asset Consts holding the source
      paths of the asset files (as a loaded or freshly built spec has them).
    save_variables: called with the checkpoint prefix to write the variables
      to; None when the module has no variables.

  Raises:
    tf.errors.AlreadyExistsError: `path` exists.
  """
  saved_model = saved_model_pb2.SavedModel()
  asset_files = {}
  for meta_graph in meta_graphs:
    meta_graph = copy.deepcopy(meta_graph)
    for filename, source in assets.prepare_for_export(meta_graph).items():
      if asset_files.setdefault(filename, source) != source:
        raise ValueError("Two graph variants use different files named %r: "
                         "%s and %s." % (filename, asset_files[filename],
                                         source))
    saved_model.meta_graphs.add().CopyFrom(meta_graph)
  with fileio.atomic_directory(path) as tmp:
    assets_dir = os.path.join(tmp, ASSETS_DIRNAME)
    tf.io.gfile.makedirs(assets_dir)
    for filename, source in sorted(asset_files.items()):
      tf.io.gfile.copy(source, os.path.join(assets_dir, filename))
    tf.io.gfile.makedirs(os.path.join(tmp, VARIABLES_DIRNAME))
    if save_variables is not None:
      save_variables(variables_prefix(tmp))
    with tf.io.gfile.GFile(os.path.join(tmp, SAVED_MODEL_FILENAME), "wb") as f:
      f.write(_serialize(saved_model))
    with tf.io.gfile.GFile(os.path.join(tmp, MODULE_DEF_FILENAME), "wb") as f:
      f.write(_serialize(protos.ModuleDef(format=protos.FORMAT_V3)))
  logging.info("Exported TF-Hub module to: %s", path)
