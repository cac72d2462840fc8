"""Copies a module's variables out of a checkpoint into a module checkpoint.

Used by `ModuleSpec.export(path, checkpoint_path=...)`.  Tensors are moved
by TensorFlow ops in groups of bounded size, each group saved as a shard of
its own and the shards merged at the end, so memory stays at one group (not
the whole checkpoint) and no Python copy of a tensor is ever made.
"""

import os
from typing import Dict, List, Mapping, Tuple

import tensorflow as tf

from hub_tf1 import fileio

# Tensors moved per session.run (bytes).
_GROUP_BYTES = 256 << 20

Entry = Tuple[str, int, Tuple[int, ...]]  # (source key, dtype enum, shape)


def check_entries(checkpoint_path: str, entries: Mapping[str, Entry]) -> None:
  """Raises ValueError unless every source key exists with dtype and shape."""
  reader = tf.train.load_checkpoint(checkpoint_path)
  shapes = reader.get_variable_to_shape_map()
  dtypes = reader.get_variable_to_dtype_map()
  for key, (source, dtype, shape) in sorted(entries.items()):
    if source not in shapes:
      raise ValueError(
          "Variable %r of the module (checkpoint key %r) is not in checkpoint "
          "%s." % (key, source, checkpoint_path))
    if tuple(shapes[source]) != tuple(shape):
      raise ValueError(
          "Variable %r of the module has shape %s, but checkpoint key %r in "
          "%s has shape %s." % (key, list(shape), source, checkpoint_path,
                                list(shapes[source])))
    if dtypes[source].as_datatype_enum != dtype:
      raise ValueError(
          "Variable %r of the module has dtype %s, but checkpoint key %r in "
          "%s has dtype %s." % (key, tf.as_dtype(dtype).name, source,
                                checkpoint_path, dtypes[source].name))


def _groups(entries: Mapping[str, Entry]) -> List[List[str]]:
  groups, current, size = [], [], 0
  for key in sorted(entries):
    _, dtype, shape = entries[key]
    nbytes = max(1, tf.as_dtype(dtype).size) * int(
        max(1, _product(shape)))
    if current and size + nbytes > _GROUP_BYTES:
      groups.append(current)
      current, size = [], 0
    current.append(key)
    size += nbytes
  if current:
    groups.append(current)
  return groups


def _product(shape) -> int:
  result = 1
  for d in shape:
    result *= int(d)
  return result


def copy_with_ops(checkpoint_path: str, prefix: str,
                  entries: Mapping[str, Entry]) -> None:
  """Writes `entries` (new key -> source) from `checkpoint_path` to `prefix`."""
  check_entries(checkpoint_path, entries)
  shard_dir = fileio.temp_sibling(prefix, tag="shards-")
  try:
    shard_prefixes = []
    with tf.Graph().as_default() as graph:
      ops = []
      for i, keys in enumerate(_groups(entries)):
        shard = os.path.join(shard_dir, "part-%05d" % i)
        shard_prefixes.append(shard)
        tensors = tf.raw_ops.RestoreV2(
            prefix=checkpoint_path,
            tensor_names=[entries[k][0] for k in keys],
            shape_and_slices=[""] * len(keys),
            dtypes=[tf.as_dtype(entries[k][1]) for k in keys])
        ops.append(tf.raw_ops.SaveV2(prefix=shard, tensor_names=keys,
                                     shape_and_slices=[""] * len(keys),
                                     tensors=tensors))
      merge = tf.raw_ops.MergeV2Checkpoints(
          checkpoint_prefixes=shard_prefixes, destination_prefix=prefix,
          delete_old_dirs=True)
      with tf.compat.v1.Session(graph=graph) as session:
        for op in ops:
          session.run(op)
        session.run(merge)
  finally:
    fileio.remove_tree(shard_dir)


def copy_variables(checkpoint_path: str, prefix: str,
                   entries: Dict[str, Entry]) -> None:
  """Copies the module's variables; the byte-streaming path when possible."""
  try:
    from hub_tf1.format import tensor_bundle  # pylint: disable=g-import-not-at-top
  except ImportError:
    tensor_bundle = None
  if tensor_bundle is not None and hasattr(tensor_bundle, "copy_tensors"):
    try:
      check_entries(checkpoint_path, entries)
      tensor_bundle.copy_tensors(
          checkpoint_path, prefix, {k: v[0] for k, v in entries.items()})
      return
    except tensor_bundle.UnsupportedEntryError:
      pass
  copy_with_ops(checkpoint_path, prefix, entries)
