"""Copies a module's variables out of a checkpoint into a module checkpoint.

Used by `ModuleSpec.export(path, checkpoint_path=...)`.  Tensors are streamed
byte for byte when the checkpoint stores them as the module does: whole, or
(partitioned variables) in exactly the module's slices.  Any other stored
slicing is moved by TensorFlow ops in groups of bounded size, each group saved
as a shard of its own and the shards merged at the end.  Memory stays at one
chunk or group, never the whole checkpoint.
"""

import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
from tensorflow.core.framework import types_pb2

from hub_tf1 import fileio
from hub_tf1.format import bundle_copy
from hub_tf1.format import checkpoint_check
from hub_tf1.format import tensor_bundle

# Tensors moved per session.run (bytes).
_GROUP_BYTES = 256 << 20

Entry = Tuple[str, int, Tuple[int, ...]]  # (source key, dtype enum, shape)
# The parts of a partitioned variable: (offset, shape) of each.
Parts = Sequence[Tuple[Tuple[int, ...], Tuple[int, ...]]]


def check_entries(checkpoint_path: str, entries: Mapping[str, Entry]) -> None:
  """Raises unless every source key exists with the module's dtype and shape.

  Raises:
    checkpoint_check.VariableNotInCheckpointError: a key is missing (a
      `ValueError`, as the original's `init_from_checkpoint`).
    checkpoint_check.VariableMismatchError: another shape or dtype (a
      `ValueError` and a `tf.errors.InvalidArgumentError`: the original
      raised the first for a shape, the second for a dtype).
  """

  def cc_name(dtype_enum: int) -> str:  # "float", "double": TensorFlow's words.
    return types_pb2.DataType.Name(dtype_enum)[len("DT_"):].lower()

  reader = tf.train.load_checkpoint(checkpoint_path)
  shapes = reader.get_variable_to_shape_map()
  dtypes = reader.get_variable_to_dtype_map()
  for key, (source, dtype, shape) in sorted(entries.items()):
    if source not in shapes:
      raise checkpoint_check.VariableNotInCheckpointError(
          "Tensor %s is not found in %s checkpoint: variable %r of the module "
          "has no entry %r there." % (source, checkpoint_path, key, source),
          filename=checkpoint_path, variable=key)
    if tuple(shapes[source]) != tuple(shape):
      # The original's words name the variable as its export graph did.
      raise checkpoint_check.VariableMismatchError(
          "Shape of variable module/%s:0 (%s) doesn't match with shape of "
          "tensor %s (%s) from checkpoint reader: variable %r of the module "
          "has shape %s, but checkpoint key %r in %s has shape %s." % (
              key, tf.TensorShape(shape), source, list(shapes[source]), key,
              list(shape), source, checkpoint_path, list(shapes[source])),
          filename=checkpoint_path, variable=key)
    if dtypes[source].as_datatype_enum != dtype:
      raise checkpoint_check.VariableMismatchError(
          "tensor_name = %s; expected dtype %s does not equal original dtype "
          "%s: variable %r of the module has dtype %s, but checkpoint key %r "
          "in %s has dtype %s." % (
              source, cc_name(dtype), cc_name(dtypes[source].as_datatype_enum),
              key, tf.as_dtype(dtype).name, source, checkpoint_path,
              dtypes[source].name),
          filename=checkpoint_path, variable=key)


def _groups(entries: Mapping[str, Entry]) -> List[List[str]]:
  groups, current, size = [], [], 0
  for key in sorted(entries):
    _, dtype, shape = entries[key]
    nbytes = max(1, tf.as_dtype(dtype).size) * int(
        max(1, math.prod(int(d) for d in shape)))
    if current and size + nbytes > _GROUP_BYTES:
      groups.append(current)
      current, size = [], 0
    current.append(key)
    size += nbytes
  if current:
    groups.append(current)
  return groups


def _save_with_ops(checkpoint_path: str, shard_dir: str,
                   entries: Mapping[str, Entry]) -> List[str]:
  """Restores and saves `entries` group by group; returns the shard prefixes."""
  shard_prefixes = []
  with tf.Graph().as_default() as graph:
    ops = []
    for i, keys in enumerate(_groups(entries)):
      shard = os.path.join(shard_dir, "ops-%05d" % i)
      shard_prefixes.append(shard)
      tensors = tf.raw_ops.RestoreV2(
          prefix=checkpoint_path,
          tensor_names=[entries[k][0] for k in keys],
          shape_and_slices=[""] * len(keys),
          dtypes=[tf.as_dtype(entries[k][1]) for k in keys])
      ops.append(tf.raw_ops.SaveV2(prefix=shard, tensor_names=keys,
                                   shape_and_slices=[""] * len(keys),
                                   tensors=tensors))
    with tf.compat.v1.Session(graph=graph) as session:
      for op in ops:
        session.run(op)
  return shard_prefixes


def _merge(shard_prefixes: List[str], prefix: str) -> None:
  with tf.Graph().as_default() as graph:
    merge = tf.raw_ops.MergeV2Checkpoints(
        checkpoint_prefixes=shard_prefixes, destination_prefix=prefix,
        delete_old_dirs=True)
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(merge)


def _stored_like_module(entry, full_shape: Tuple[int, ...],
                        parts: Optional[Parts]) -> bool:
  """True if `entry` can be copied as stored: whole, or in the module's parts.

  A whole tensor is copied as is either way (TensorFlow restores a partition
  from it); slices only when they are exactly the module's partitions, so
  that the module's checkpoint keeps its own partitioning.
  """
  if not entry.slices:
    return True
  if not parts:
    return False
  stored = set()
  for tensor_slice in entry.slices:
    ranges = []
    for dim, extent in enumerate(tensor_slice.extent):
      length = (extent.length if extent.HasField("length")
                else full_shape[dim])
      ranges.append((extent.start, length))
    # A slice proto may omit trailing full dimensions.
    for dim in range(len(ranges), len(full_shape)):
      ranges.append((0, full_shape[dim]))
    stored.add(tuple(ranges))
  wanted = {tuple(zip(offset, shape)) for offset, shape in parts}
  return stored == wanted


def copy_variables(checkpoint_path: str, prefix: str,
                   entries: Dict[str, Entry],
                   partitions: Optional[Mapping[str, Parts]] = None) -> None:
  """Writes `entries` (new key -> source) from `checkpoint_path` to `prefix`.

  Tensors stored whole, or as slices equal to the module's `partitions`
  (new key -> parts), are streamed byte for byte (bundle_copy); tensors
  stored in another slicing are restored whole and saved by TensorFlow ops;
  both parts are merged into one checkpoint.
  """
  check_entries(checkpoint_path, entries)
  partitions = partitions or {}
  _, index = tensor_bundle.read_index(checkpoint_path)
  as_stored = {
      k: e for k, e in entries.items()
      if _stored_like_module(index[e[0]], tuple(e[2]), partitions.get(k))}
  by_ops = {k: e for k, e in entries.items() if k not in as_stored}
  if not by_ops:
    bundle_copy.copy_tensors(checkpoint_path, prefix,
                             {k: e[0] for k, e in as_stored.items()},
                             copy_slices=True)
    return
  shard_dir = fileio.temp_sibling(prefix, tag="shards-")
  try:
    shards = []
    if as_stored:
      shards.append(os.path.join(shard_dir, "bytes"))
      bundle_copy.copy_tensors(checkpoint_path, shards[0],
                               {k: e[0] for k, e in as_stored.items()},
                               copy_slices=True)
    shards.extend(_save_with_ops(checkpoint_path, shard_dir, by_ops))
    _merge(shards, prefix)
  finally:
    fileio.remove_tree(shard_dir)
