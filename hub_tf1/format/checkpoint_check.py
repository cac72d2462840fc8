"""Checks a module's checkpoint against its graph before anything runs.

Rules of this file:
* Only the checkpoint's index is read (with `tensor_bundle.read_index`), and
  the data shards it names are stat-ed; no tensor bytes are read.
* Each failure raises the exception class tensorflow_hub 0.15 raised for the
  same damage (at `hub.Module()` when it noticed then, else at the first
  `session.run` of the initializers), mixed with `hub_tf1.Error`; the message
  names the module directory, the file and the variable, and contains the
  phrase the original's message used, so code matching on it keeps working.
* Each error carries `module_dir`, `filename` and `variable` (None when not
  about one variable) as attributes.
"""

import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from google.protobuf import message as proto_message
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from hub_tf1 import errors
from hub_tf1.format import tensor_bundle


def module_dir_of(prefix: str) -> str:
  """The module directory of checkpoint `prefix` (`<dir>/variables/variables`).

  Any other prefix (e.g. a training checkpoint) is its own description.
  """
  parent, base = os.path.split(prefix)
  grand, parent_base = os.path.split(parent)
  if base == "variables" and parent_base == "variables":
    return grand
  return prefix


def _locate(error: Exception, module_dir: Optional[str],
            filename: Optional[str], variable: Optional[str]) -> None:
  """Attaches where a checkpoint error is (each may be None)."""
  error.module_dir = module_dir
  error.filename = filename
  error.variable = variable


class CheckpointFileNotFoundError(errors.Error, tf.errors.NotFoundError):
  """The checkpoint index or a data shard it names is missing.

  A `tf.errors.NotFoundError`, as the original raised for both (for the
  index at construction, for a shard when the initializers ran).
  """

  def __init__(self, message: str, module_dir: Optional[str] = None,
               filename: Optional[str] = None,
               variable: Optional[str] = None):
    super().__init__(None, None, message)
    _locate(self, module_dir, filename, variable)


class CorruptCheckpointError(errors.Error, tf.errors.UnknownError):
  """The checkpoint index is not a readable tensor-bundle table.

  The original raised a plain `tf.errors.OpError` with code UNKNOWN; this is
  the `tf.errors.UnknownError` of that code, so `except tf.errors.OpError`
  and checks of `error_code` keep working.
  """

  def __init__(self, message: str, module_dir: Optional[str] = None,
               filename: Optional[str] = None,
               variable: Optional[str] = None):
    super().__init__(None, None, message)
    _locate(self, module_dir, filename, variable)


class TruncatedShardError(errors.Error, tf.errors.OutOfRangeError):
  """A data shard is shorter than the index says its tensors need.

  A `tf.errors.OutOfRangeError`, as the original raised when the
  initializers ran.
  """

  def __init__(self, message: str, module_dir: Optional[str] = None,
               filename: Optional[str] = None,
               variable: Optional[str] = None):
    super().__init__(None, None, message)
    _locate(self, module_dir, filename, variable)


class VariableNotInCheckpointError(errors.Error, ValueError):
  """A variable of the module's graph has no entry in its checkpoint.

  A `ValueError`, as the original raised at construction.
  """

  def __init__(self, message: str, module_dir: Optional[str] = None,
               filename: Optional[str] = None,
               variable: Optional[str] = None):
    super().__init__(message)
    _locate(self, module_dir, filename, variable)


class VariableMismatchError(errors.Error, tf.errors.InvalidArgumentError,
                            ValueError):
  """A checkpoint entry has another dtype or shape than the graph's variable.

  Both a `ValueError` (what the original raised at construction for the
  shape of a whole variable) and a `tf.errors.InvalidArgumentError` (what it
  raised when the initializers ran, for a dtype or a partitioned variable's
  shape).
  """

  def __init__(self, message: str, module_dir: Optional[str] = None,
               filename: Optional[str] = None,
               variable: Optional[str] = None):
    tf.errors.InvalidArgumentError.__init__(self, None, None, message)
    _locate(self, module_dir, filename, variable)


def _tf_type_name(dtype_enum: int) -> str:
  """The C++ name of a dtype ("float", "double", "int32")."""
  try:
    name = types_pb2.DataType.Name(dtype_enum)
  except ValueError:
    return "type %d" % dtype_enum
  return name[len("DT_"):].lower() if name.startswith("DT_") else name.lower()


def _py_type_name(dtype_enum: int) -> str:
  try:
    return tf.as_dtype(dtype_enum).name
  except TypeError:
    return _tf_type_name(dtype_enum)


def _shape_matches(graph: Sequence[int], stored: Sequence[int]) -> bool:
  """Equal rank and sizes; a graph dimension of -1 (unknown) matches any."""
  return len(graph) == len(stored) and all(
      g < 0 or g == s for g, s in zip(graph, stored))


def _comma(dims: Iterable[int]) -> str:
  return "[%s]" % ",".join(str(d) for d in dims)


def check_variables(prefix: str, parts_by_key: Mapping[str, Sequence[object]],
                    scope: str = "module") -> None:
  """Checks that checkpoint `prefix` can restore every variable of a graph.

  Args:
    prefix: the checkpoint prefix (`<module>/variables/variables`).
    parts_by_key: checkpoint key -> the `variables.VariablePart`s of that
      variable in the graph (one part unless partitioned).
    scope: the scope the module's variables get in the caller's graph (for
      the variable names in messages).

  Raises:
    CheckpointFileNotFoundError: no index, or a data shard it names is
      missing.
    CorruptCheckpointError: the index is not a valid tensor-bundle table.
    VariableNotInCheckpointError: a variable has no checkpoint entry.
    VariableMismatchError: an entry's dtype or shape is not the variable's.
    TruncatedShardError: a data shard is shorter than its index entries say.
  """
  if not parts_by_key:
    return
  module_dir = module_dir_of(prefix)
  index_file = tensor_bundle.index_path(prefix)
  sliced = False
  try:
    header, entries = tensor_bundle.read_index(prefix,
                                               include_slice_keys=True)
  except tf.errors.NotFoundError as e:
    raise CheckpointFileNotFoundError(
        "Module %s: its checkpoint index %s does not exist, so the module's "
        "%d variables cannot be restored (Failed to find any matching files "
        "for %s)." % (module_dir, index_file, len(parts_by_key), prefix),
        module_dir, index_file) from e
  except (tensor_bundle.CorruptIndexError, proto_message.DecodeError) as e:
    raise CorruptCheckpointError(
        "Module %s: Unable to read file (%s); the checkpoint index is "
        "corrupt: %s" % (module_dir, index_file, e),
        module_dir, index_file) from e

  # Shard id -> (largest end offset needed, a variable that needs it).
  needed: Dict[int, List[object]] = {}

  def need(entry, key):
    end = entry.offset + entry.size
    if entry.shard_id not in needed or needed[entry.shard_id][0] < end:
      needed[entry.shard_id] = [end, key]

  for key in sorted(parts_by_key):
    parts = parts_by_key[key]
    part = parts[0]
    partitioned = len(parts) > 1 or part.is_slice
    entry = entries.get(key)
    if entry is None:
      raise VariableNotInCheckpointError(
          "Module %s: variable %r (%s %s) has no entry in the checkpoint "
          "index %s (Tensor %s is not found in %s checkpoint)." % (
              module_dir, key, _py_type_name(part.dtype),
              list(part.full_shape), index_file, key, prefix),
          module_dir, index_file, key)
    if entry.dtype != part.dtype:
      raise VariableMismatchError(
          "Module %s: variable %r has dtype %s in the module's graph but %s "
          "in the checkpoint index %s (tensor_name = %s; expected dtype %s "
          "does not equal original dtype %s)." % (
              module_dir, key, _py_type_name(part.dtype),
              _py_type_name(entry.dtype), index_file, key,
              _tf_type_name(part.dtype), _tf_type_name(entry.dtype)),
          module_dir, index_file, key)
    stored = [int(d.size) for d in entry.shape.dim]
    if not _shape_matches(part.full_shape, stored):
      if partitioned:
        phrase = ("tensor_name = %s; shape in shape_and_slice spec %s does "
                  "not match the shape stored in checkpoint: %s" % (
                      key, _comma(part.full_shape), _comma(stored)))
      else:
        phrase = ("Shape of variable %s/%s:0 (%s) doesn't match with shape "
                  "of tensor %s (%s) from checkpoint reader." % (
                      scope, key, tuple(part.full_shape), key, stored))
      raise VariableMismatchError(
          "Module %s: variable %r has shape %s in the module's graph but %s "
          "in the checkpoint index %s (%s)" % (
              module_dir, key, list(part.full_shape), stored, index_file,
              phrase),
          module_dir, index_file, key)
    if entry.slices:
      sliced = True
    else:
      need(entry, key)
  if sliced:
    for raw_key, entry in entries.items():
      if isinstance(raw_key, bytes):
        name, _ = tensor_bundle.split_slice_key(raw_key)
        if name in parts_by_key:
          need(entry, name)
  _check_shards(prefix, header.num_shards, needed, module_dir, index_file)


def _check_shards(prefix: str, num_shards: int,
                  needed: Mapping[int, Sequence[object]], module_dir: str,
                  index_file: str) -> None:
  for shard in sorted(needed):
    end, key = needed[shard]
    if not 0 <= shard < max(num_shards, 1):
      raise CorruptCheckpointError(
          "Module %s: Unable to read file (%s); the checkpoint index is "
          "corrupt: variable %r is in shard %d of %d." % (
              module_dir, index_file, key, shard, num_shards),
          module_dir, index_file, key)
    path = tensor_bundle.data_path(prefix, shard, num_shards)
    try:
      length = tf.io.gfile.stat(path).length
    except tf.errors.NotFoundError as e:
      raise CheckpointFileNotFoundError(
          "Module %s: the data shard %s that the checkpoint index %s names "
          "(for variable %r, among others) is missing (%s; No such file or "
          "directory)." % (module_dir, path, index_file, key, path),
          module_dir, path, key) from e
    if length < end:
      raise TruncatedShardError(
          "Module %s: the data shard %s has %d bytes, but the checkpoint "
          "index %s places variable %r up to byte %d (Read less bytes than "
          "requested)." % (
              module_dir, path, length, index_file, key, end),
          module_dir, path, key)
