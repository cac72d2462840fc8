"""Copies tensors between V2 checkpoints by streaming their stored bytes.

Used by `ModuleSpec.export(path, checkpoint_path=...)` to copy the few tensors
a module needs out of a (possibly huge) training checkpoint.

Rules of this file:
- Tensor bytes are never decoded, checked or held in memory beyond one
  `chunk_size` buffer; the source entry's crc32c is carried over, so
  TensorFlow checks the bytes on restore.  Only the small index is parsed.
- Two steps: `plan_copy` decides which source bytes go where and what the new
  index says (pure: no file access), `write_copy` carries a plan out.
- The output is always one data shard written through a temporary sibling and
  a rename, then the index (atomically, last), so an index marks a complete
  checkpoint.  The source is never written.
"""

import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from absl import logging
import tensorflow as tf

from tensorflow.core.framework import types_pb2

from hub_tf1 import fileio
from hub_tf1.format import tensor_bundle

BundleEntryProto = tensor_bundle.BundleEntryProto
# Measured on a local disk (1 GB tensor, TF 2.15): 256 KiB chunks stream at
# about the speed of `tf.io.gfile.copy`; 16 MiB chunks were 2-4x slower and
# GFile's buffering holds about four chunks in memory at a time.
DEFAULT_CHUNK_SIZE = 256 * 1024

DTypeLike = Union[tf.dtypes.DType, int]
ShapeLike = Optional[Sequence[Optional[int]]]
Expected = Mapping[str, Tuple[Optional[DTypeLike], ShapeLike]]
IndexKey = Union[str, bytes]
# Errors raised here (defined with the other bundle errors).
MissingTensorError = tensor_bundle.MissingTensorError
SlicedTensorError = tensor_bundle.SlicedTensorError
TensorMismatchError = tensor_bundle.TensorMismatchError


def _dtype_enum(dtype: DTypeLike) -> int:
  if isinstance(dtype, int):
    return dtype
  return tf.dtypes.as_dtype(dtype).as_datatype_enum


def _check_expected(new_key: str, entry: BundleEntryProto,
                    dtype: Optional[DTypeLike], shape: ShapeLike) -> None:
  got_dtype = entry.dtype
  if dtype is not None and _dtype_enum(dtype) != got_dtype:
    raise tensor_bundle.TensorMismatchError(
        "Tensor %r: checkpoint has dtype %s, expected %s" %
        (new_key, types_pb2.DataType.Name(got_dtype),
         types_pb2.DataType.Name(_dtype_enum(dtype))))
  if shape is not None:
    got = [d.size for d in entry.shape.dim]
    want = list(shape)
    if len(got) != len(want) or any(
        w is not None and w != g for g, w in zip(got, want)):
      raise tensor_bundle.TensorMismatchError(
          "Tensor %r: checkpoint has shape %s, expected %s" %
          (new_key, got, want))


@dataclasses.dataclass
class Run:
  """A contiguous byte range of one source shard."""
  shard: int
  offset: int
  size: int


@dataclasses.dataclass(frozen=True)
class CopyPlan:
  """What a copy writes (the output of `plan_copy`)."""
  # Source byte ranges by (shard, offset), touching ones merged; the new data
  # file is their concatenation in this order.
  runs: Tuple[Run, ...]
  # The new index: new key (or slice key) -> entry, offsets into that file.
  entries: Dict[IndexKey, BundleEntryProto]
  header: tensor_bundle.BundleHeaderProto  # One shard, else as the source's.
  num_src_shards: int  # The source's shard count (names its data files).
  num_bytes: int  # Size of the new data file.


def _merge_runs(ranges: Sequence[Tuple[int, int, int]]) -> List[Run]:
  """Merges sorted (shard, offset, size) ranges that touch into runs."""
  runs: List[Run] = []
  for shard, offset, size in ranges:
    last = runs[-1] if runs else None
    if last and last.shard == shard and last.offset + last.size == offset:
      last.size += size
    else:
      runs.append(Run(shard, offset, size))
  return runs


def plan_copy(header: tensor_bundle.BundleHeaderProto,
              src_entries: Mapping[IndexKey, BundleEntryProto],
              key_map: Mapping[str, str],
              expected: Optional[Expected] = None,
              copy_slices: bool = False,
              src_prefix: str = "checkpoint") -> CopyPlan:
  """Plans copying `key_map` (new key -> source key) out of a source index.

  Pure: reads no file.  A source byte range mapped to several new keys is
  stored once; new offsets follow the source's (shard, offset) order.

  Args:
    header, src_entries: the source index as `read_index` returns it (with
      slice keys when `copy_slices`).
    key_map, expected, copy_slices: see `copy_tensors`.
    src_prefix: the source's name in error messages.

  Returns:
    The plan.

  Raises:
    MissingTensorError, SlicedTensorError, TensorMismatchError: see
      `copy_tensors`.
    CorruptIndexError: a sliced entry lists more or fewer slices than stored.
  """
  slices_of: Dict[str, List[Tuple[bytes, BundleEntryProto]]] = {}
  for key, entry in src_entries.items():
    if isinstance(key, bytes):
      name, encoded_slice = tensor_bundle.split_slice_key(key)
      slices_of.setdefault(name, []).append((encoded_slice, entry))
  # (new index key, source entry whose bytes it gets); sliced tensors add
  # their byte-less entry that lists the slices to `listing`.
  with_bytes: List[Tuple[IndexKey, BundleEntryProto]] = []
  listing: Dict[str, BundleEntryProto] = {}
  for new_key in sorted(key_map):
    src_key = key_map[new_key]
    entry = src_entries.get(src_key)
    if entry is None:
      raise tensor_bundle.MissingTensorError(src_key, src_prefix)
    if expected and new_key in expected:
      dtype, shape = expected[new_key]
      _check_expected(new_key, entry, dtype, shape)
    if not entry.slices:
      with_bytes.append((new_key, entry))
      continue
    if not copy_slices:
      raise tensor_bundle.SlicedTensorError(src_key, src_prefix)
    stored = slices_of.get(src_key, [])
    if len(stored) != len(entry.slices):
      raise tensor_bundle.CorruptIndexError(
          "%s: tensor %r lists %d slices but %d are stored" %
          (tensor_bundle.index_path(src_prefix), src_key, len(entry.slices),
           len(stored)))
    listed = BundleEntryProto()
    listed.CopyFrom(entry)
    listed.ClearField("shard_id")
    listed.ClearField("offset")
    listing[new_key] = listed
    for encoded_slice, slice_entry in stored:
      with_bytes.append((tensor_bundle.make_slice_key(new_key, encoded_slice),
                         slice_entry))

  unique = sorted({(e.shard_id, e.offset, e.size) for _, e in with_bytes})
  new_offset = {}
  pos = 0
  for rng in unique:
    new_offset[rng] = pos
    pos += rng[2]
  entries: Dict[IndexKey, BundleEntryProto] = dict(listing)
  for new_key, src in with_bytes:
    entry = BundleEntryProto()
    entry.CopyFrom(src)
    entry.shard_id = 0
    entry.offset = new_offset[(src.shard_id, src.offset, src.size)]
    entries[new_key] = entry
  return CopyPlan(runs=tuple(_merge_runs(unique)), entries=entries,
                  header=tensor_bundle.new_header(1, like=header),
                  num_src_shards=header.num_shards, num_bytes=pos)


def write_copy(plan: CopyPlan, src_prefix: str, dst_prefix: str,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
  """Writes `<dst_prefix>`'s data shard from `plan.runs`, then its index.

  Raises:
    CorruptIndexError: a run refers to a shard the source does not have.
    tf.errors.DataLossError: a source shard is shorter than its index says.
  """
  dst_dir = os.path.dirname(dst_prefix)
  if dst_dir and not tf.io.gfile.exists(dst_dir):
    tf.io.gfile.makedirs(dst_dir)
  out_path = tensor_bundle.data_path(dst_prefix, 0, 1)
  with fileio.atomic_writer(out_path) as out:
    src_file = None
    src_shard = -1
    try:
      for run in plan.runs:
        if run.shard != src_shard:
          if src_file is not None:
            src_file.close()
          if not 0 <= run.shard < plan.num_src_shards:
            raise tensor_bundle.CorruptIndexError(
                "%s: entry refers to shard %d of %d" %
                (tensor_bundle.index_path(src_prefix), run.shard,
                 plan.num_src_shards))
          src_file = tf.io.gfile.GFile(
              tensor_bundle.data_path(src_prefix, run.shard,
                                      plan.num_src_shards), "rb")
          src_shard = run.shard
        _copy_range(src_file, out, run, chunk_size)
    finally:
      if src_file is not None:
        src_file.close()
  tensor_bundle.write_index(dst_prefix, plan.header, plan.entries)


def copy_tensors(
    src_prefix: str,
    dst_prefix: str,
    key_map: Mapping[str, str],
    expected: Optional[Expected] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    copy_slices: bool = False,
) -> Dict[str, BundleEntryProto]:
  """Copies tensors from `src_prefix` to a new checkpoint at `dst_prefix`.

  Writes `<dst_prefix>.data-00000-of-00001` and then `<dst_prefix>.index`.
  The source bytes are read in (shard, offset) order, merging adjacent tensors
  into single reads; a source tensor mapped to several new keys is stored
  once.  Stale files of another shard count at `dst_prefix` are not removed.

  A tensor saved from slices (a partitioned variable) is copied only with
  `copy_slices=True`: then its slices are copied as stored, re-keyed under the
  new name, so the result keeps the source's partitioning (see
  `entry.slices`).  TensorFlow restores any partitioning from it, but a
  caller that must write the module's own partitioning checks the slices
  first and otherwise restores and saves the tensor with ops.

  Args:
    src_prefix: prefix of the source checkpoint (any number of shards).
    dst_prefix: prefix of the checkpoint to write.
    key_map: new key -> source key.
    expected: optional new key -> (dtype or None, shape or None); a mismatch
      raises `TensorMismatchError`.  `None` dims in a shape match any size.
    chunk_size: bytes read and written per I/O call.
    copy_slices: copy tensors stored as slices too (see above).

  Returns:
    The new entries by new key (for a sliced tensor: its entry that lists
    the slices).

  Raises:
    MissingTensorError: a source key is not in the checkpoint.
    SlicedTensorError: a source key is a partitioned tensor stored as slices
      and `copy_slices` is False; callers fall back to a graph-based
      restore-and-save for such keys.
    TensorMismatchError: see `expected`.
    ValueError: `dst_prefix` is `src_prefix`, or `chunk_size` <= 0.
    tf.errors.DataLossError: a source shard is shorter than its index says.
  """
  if chunk_size <= 0:
    raise ValueError("chunk_size must be positive, got %d" % chunk_size)
  if os.path.normpath(src_prefix) == os.path.normpath(dst_prefix):
    raise ValueError("copy_tensors cannot write over its source %s" %
                     src_prefix)
  header, src_entries = tensor_bundle.read_index(
      src_prefix, include_slice_keys=copy_slices)
  plan = plan_copy(header, src_entries, key_map, expected=expected,
                   copy_slices=copy_slices, src_prefix=src_prefix)
  write_copy(plan, src_prefix, dst_prefix, chunk_size)
  logging.info("Copied %d tensors (%d bytes) from %s to %s", len(key_map),
               plan.num_bytes, src_prefix, dst_prefix)
  return {k: e for k, e in plan.entries.items() if isinstance(k, str)}


def _copy_range(src: tf.io.gfile.GFile, out: tf.io.gfile.GFile, run: Run,
                chunk_size: int) -> None:
  """Streams `run.size` bytes from `run.offset` of `src` to `out`."""
  if run.size == 0:
    return
  src.seek(run.offset)
  left = run.size
  while left:
    chunk = src.read(min(chunk_size, left))
    if not chunk:
      raise tf.errors.DataLossError(
          None, None, "%s: shard %d ends %d bytes early (want %d bytes at "
          "offset %d)" % (src.name, run.shard, left, run.size, run.offset))
    out.write(chunk)
    left -= len(chunk)
