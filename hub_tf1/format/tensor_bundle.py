"""Reads and writes TensorFlow V2 checkpoint ("tensor bundle") indexes.

A V2 checkpoint `<prefix>` consists of `<prefix>.index` and data shards
`<prefix>.data-<i>-of-<n>` (both numbers with five digits).  The index is a
LevelDB-style sorted string table: the empty key maps to a serialized
`BundleHeaderProto`; every other key is a tensor name mapping to a serialized
`BundleEntryProto` that says in which shard, at which offset and with which
size and crc32c the tensor's bytes are stored.  Partitioned tensors saved from
slices have an entry with `slices` set plus one entry per slice under binary
keys that start with a zero byte.

This module exists so that `ModuleSpec.export(path, checkpoint_path=...)` can
copy the few tensors a module needs out of a (possibly huge) training
checkpoint by streaming their bytes from the data shards: no tensor is ever
materialised, memory stays at one chunk, and the speed is that of a file copy.
Only the small index is parsed and re-encoded in Python.

Table layout written and accepted here (the subset TensorFlow itself uses):

* data blocks: entries `varint32 shared, varint32 non_shared, varint32
  value_len, key suffix, value`, keys prefix-compressed against the previous
  key and stored in full at every restart point; then the restart offsets
  (fixed32 each) and their count (fixed32);
* each block is followed by a 5-byte trailer: compression type (0 = none) and
  the masked crc32c of the block contents plus that type byte;
* an (empty) metaindex block, then an index block whose values are block
  handles (`varint64 offset, varint64 size`) of the data blocks, keyed by a key
  that is >= every key of its block and < every key of the next block;
* a 48-byte footer: metaindex handle, index handle, zero padding to 40 bytes,
  then the magic number 0xdb4775248b80fb57 as two little-endian fixed32.
"""

import dataclasses
import os
import struct
from typing import (Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

from absl import logging
import tensorflow as tf

from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import tensor_bundle_pb2

from hub_tf1 import errors
from hub_tf1 import fileio

BundleHeaderProto = tensor_bundle_pb2.BundleHeaderProto
BundleEntryProto = tensor_bundle_pb2.BundleEntryProto

TABLE_MAGIC = 0xdb4775248b80fb57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
HEADER_KEY = b""
# TensorFlow's `table::Options` defaults, also used for tensor bundles.
DEFAULT_BLOCK_SIZE = 256 * 1024
DEFAULT_RESTART_INTERVAL = 16
# Measured on a local disk (1 GB tensor, TF 2.15): 256 KiB chunks stream at
# about the speed of `tf.io.gfile.copy`; 16 MiB chunks were 2-4x slower and
# GFile's buffering holds about four chunks in memory at a time.
DEFAULT_CHUNK_SIZE = 256 * 1024
# Version TensorFlow's BundleWriter stamps into new headers.
_BUNDLE_PRODUCER_VERSION = 1

_NO_COMPRESSION = 0
_SNAPPY_COMPRESSION = 1
_CRC_MASK_DELTA = 0xa282ead8
_U32 = 0xffffffff


class TensorBundleError(errors.Error, ValueError):
  """Base class of the errors raised by this module."""


class CorruptIndexError(TensorBundleError):
  """The index file is not a valid tensor-bundle table."""


class MissingTensorError(TensorBundleError):
  """A requested key is not in the source checkpoint."""

  def __init__(self, key: str, prefix: str):
    super().__init__("Tensor %r is not found in checkpoint %s" % (key, prefix))
    self.key = key


class SlicedTensorError(TensorBundleError):
  """A requested tensor is stored as slices (a partitioned variable).

  Its bytes are spread over several entries that would have to be
  re-assembled, which this byte-level copy does not do; callers fall back to
  restoring the variable in a graph and saving it again.
  """

  def __init__(self, key: str, prefix: str):
    super().__init__(
        "Tensor %r in checkpoint %s is stored as slices (partitioned); it "
        "cannot be copied byte-wise" % (key, prefix))
    self.key = key


class TensorMismatchError(TensorBundleError):
  """A source tensor has another dtype or shape than the caller expects."""


# ----------------------------------------------------------------------------
# crc32c (Castagnoli), table driven.  TensorFlow's Python API exposes no
# binding for it; index blocks are small, so pure Python is fast enough.


def _make_crc32c_table() -> Tuple[int, ...]:
  poly = 0x82f63b78  # Reversed Castagnoli polynomial.
  table = []
  for n in range(256):
    c = n
    for _ in range(8):
      c = (c >> 1) ^ poly if c & 1 else c >> 1
    table.append(c)
  return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
  """crc32c of `data`, continuing from a previous (unmasked) `crc`."""
  table = _CRC32C_TABLE
  c = crc ^ _U32
  for b in data:
    c = table[(c ^ b) & 0xff] ^ (c >> 8)
  return c ^ _U32


def mask_crc(crc: int) -> int:
  """The masked form of a crc32c that LevelDB tables store."""
  return ((((crc >> 15) | (crc << 17)) & _U32) + _CRC_MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
  """Inverse of `mask_crc`."""
  rot = (masked - _CRC_MASK_DELTA) & _U32
  return ((rot >> 17) | (rot << 15)) & _U32


# ----------------------------------------------------------------------------
# Varints.


def _put_varint(out: bytearray, value: int) -> None:
  while value >= 0x80:
    out.append((value & 0x7f) | 0x80)
    value >>= 7
  out.append(value)


def _get_varint(buf: bytes, pos: int, limit: int,
                max_bits: int = 64) -> Tuple[int, int]:
  """Decodes a varint at `pos`; returns (value, position after it)."""
  result = 0
  shift = 0
  while pos < limit and shift < max_bits:
    b = buf[pos]
    pos += 1
    result |= (b & 0x7f) << shift
    if not b & 0x80:
      return result, pos
    shift += 7
  raise CorruptIndexError("bad varint at offset %d" % pos)


@dataclasses.dataclass(frozen=True)
class BlockHandle:
  """Position of a block in the table file (without its trailer)."""
  offset: int
  size: int

  def encode(self) -> bytes:
    out = bytearray()
    _put_varint(out, self.offset)
    _put_varint(out, self.size)
    return bytes(out)

  @classmethod
  def decode(cls, buf: bytes, pos: int = 0) -> Tuple["BlockHandle", int]:
    offset, pos = _get_varint(buf, pos, len(buf))
    size, pos = _get_varint(buf, pos, len(buf))
    return cls(offset, size), pos


# ----------------------------------------------------------------------------
# Table reading.


def _read_block(data: bytes, handle: BlockHandle, name: str) -> bytes:
  """Returns the checked contents of the block at `handle` in `data`."""
  end = handle.offset + handle.size
  if end + BLOCK_TRAILER_SIZE > len(data):
    raise CorruptIndexError("%s: truncated block at offset %d" %
                            (name, handle.offset))
  contents = data[handle.offset:end]
  kind = data[end]
  (stored,) = struct.unpack_from("<I", data, end + 1)
  actual = crc32c(data[handle.offset:end + 1])
  if unmask_crc(stored) != actual:
    raise CorruptIndexError("%s: block checksum mismatch at offset %d" %
                            (name, handle.offset))
  if kind == _SNAPPY_COMPRESSION:
    raise CorruptIndexError(
        "%s: snappy-compressed table blocks are not supported (TensorFlow "
        "never writes them for checkpoints)" % name)
  if kind != _NO_COMPRESSION:
    raise CorruptIndexError("%s: bad block type %d" % (name, kind))
  return contents


def _iter_block(contents: bytes, name: str) -> Iterator[Tuple[bytes, bytes]]:
  """Yields the (key, value) pairs of one block."""
  size = len(contents)
  if size < 4:
    raise CorruptIndexError("%s: block too short" % name)
  (num_restarts,) = struct.unpack_from("<I", contents, size - 4)
  limit = size - 4 - 4 * num_restarts
  if limit < 0:
    raise CorruptIndexError("%s: bad restart array" % name)
  pos = 0
  key = b""
  while pos < limit:
    shared, pos = _get_varint(contents, pos, limit, 32)
    non_shared, pos = _get_varint(contents, pos, limit, 32)
    value_len, pos = _get_varint(contents, pos, limit, 32)
    if shared > len(key) or pos + non_shared + value_len > limit:
      raise CorruptIndexError("%s: bad block entry at offset %d" % (name, pos))
    key = key[:shared] + contents[pos:pos + non_shared]
    pos += non_shared
    yield key, contents[pos:pos + value_len]
    pos += value_len


def iter_table(data: bytes,
               name: str = "table") -> Iterator[Tuple[bytes, bytes]]:
  """Yields the (key, value) pairs of a serialized table, in file order."""
  if len(data) < FOOTER_SIZE:
    raise CorruptIndexError("%s: file is too short to be an sstable" % name)
  footer = data[-FOOTER_SIZE:]
  magic_lo, magic_hi = struct.unpack_from("<II", footer, FOOTER_SIZE - 8)
  if (magic_hi << 32) | magic_lo != TABLE_MAGIC:
    raise CorruptIndexError("%s: not an sstable (bad magic number)" % name)
  _, pos = BlockHandle.decode(footer, 0)  # Metaindex: unused by bundles.
  index_handle, _ = BlockHandle.decode(footer, pos)
  index = _read_block(data, index_handle, name)
  for _, handle_bytes in _iter_block(index, name):
    handle, _ = BlockHandle.decode(handle_bytes)
    yield from _iter_block(_read_block(data, handle, name), name)


def is_slice_key(key: bytes) -> bool:
  """Whether `key` names one slice of a partitioned tensor (internal key)."""
  return key.startswith(b"\x00")


def split_slice_key(key: bytes) -> Tuple[str, bytes]:
  """Splits a slice key into (tensor name, encoded slice).

  Slice keys are TensorFlow's `EncodeTensorNameSlice`: the OrderedCode
  encodings of the number 0 (one zero byte), of the tensor name (bytes 0x00
  and 0xff escaped as 00 ff and ff 00, terminated by 00 01) and of the slice
  (rank, then start and length per dimension).  Only the name is decoded; the
  slice part is returned as stored, so that `make_slice_key` can put it under
  another name without re-encoding numbers.
  """
  if not key.startswith(b"\x00"):
    raise CorruptIndexError("not a slice key: %r" % key)
  name = bytearray()
  pos = 1
  while pos + 1 < len(key):
    b, nxt = key[pos], key[pos + 1]
    if b == 0x00 and nxt == 0x01:
      return name.decode("utf-8"), key[pos + 2:]
    if b == 0x00 and nxt == 0xff:
      name.append(0x00)
      pos += 2
    elif b == 0xff and nxt == 0x00:
      name.append(0xff)
      pos += 2
    elif b in (0x00, 0xff):
      break
    else:
      name.append(b)
      pos += 1
  raise CorruptIndexError("bad slice key: %r" % key)


def make_slice_key(name: str, encoded_slice: bytes) -> bytes:
  """The slice key of `encoded_slice` (see `split_slice_key`) under `name`."""
  out = bytearray(b"\x00")
  for b in name.encode("utf-8"):
    if b == 0x00:
      out += b"\x00\xff"
    elif b == 0xff:
      out += b"\xff\x00"
    else:
      out.append(b)
  out += b"\x00\x01"
  out += encoded_slice
  return bytes(out)


def index_path(prefix: str) -> str:
  return prefix + ".index"


def data_path(prefix: str, shard: int, num_shards: int) -> str:
  return "%s.data-%05d-of-%05d" % (prefix, shard, num_shards)


def read_index(
    prefix: str,
    include_slice_keys: bool = False,
) -> Tuple[BundleHeaderProto, Dict[Union[str, bytes], BundleEntryProto]]:
  """Parses `<prefix>.index` of a V2 checkpoint.

  Args:
    prefix: checkpoint prefix (without `.index`).
    include_slice_keys: also return the internal per-slice entries of
      partitioned tensors, under their binary keys (`bytes`).

  Returns:
    (header, entries): the `BundleHeaderProto` and a dict from tensor name to
    `BundleEntryProto`, in key order.

  Raises:
    tf.errors.NotFoundError: no index file.
    CorruptIndexError: the file is not a valid bundle index.
  """
  path = index_path(prefix)
  with tf.io.gfile.GFile(path, "rb") as f:
    data = f.read()
  header = None
  entries = {}
  for key, value in iter_table(data, path):
    if key == HEADER_KEY:
      header = BundleHeaderProto.FromString(value)
      continue
    if is_slice_key(key):
      if include_slice_keys:
        entries[key] = BundleEntryProto.FromString(value)
      continue
    entries[key.decode("utf-8")] = BundleEntryProto.FromString(value)
  if header is None:
    raise CorruptIndexError("%s: no bundle header entry" % path)
  return header, entries


# ----------------------------------------------------------------------------
# Table writing.


class _BlockBuilder:
  """Accumulates sorted entries of one block with prefix-compressed keys."""

  def __init__(self, restart_interval: int):
    self._interval = restart_interval
    self.reset()

  def reset(self) -> None:
    self._buf = bytearray()
    self._restarts = [0]
    self._counter = 0
    self.last_key = b""
    self.empty = True

  def add(self, key: bytes, value: bytes) -> None:
    shared = 0
    if self._counter < self._interval:
      limit = min(len(key), len(self.last_key))
      while shared < limit and key[shared] == self.last_key[shared]:
        shared += 1
    else:
      self._restarts.append(len(self._buf))
      self._counter = 0
    _put_varint(self._buf, shared)
    _put_varint(self._buf, len(key) - shared)
    _put_varint(self._buf, len(value))
    self._buf += key[shared:]
    self._buf += value
    self._counter += 1
    self.last_key = key
    self.empty = False

  def size_estimate(self) -> int:
    return len(self._buf) + 4 * len(self._restarts) + 4

  def finish(self) -> bytes:
    out = self._buf
    for r in self._restarts:
      out += struct.pack("<I", r)
    out += struct.pack("<I", len(self._restarts))
    return bytes(out)


def _short_successor(key: bytes) -> bytes:
  """A short key >= `key` (first byte that can be incremented, cut after)."""
  for i, b in enumerate(key):
    if b != 0xff:
      return key[:i] + bytes([b + 1])
  return key


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
  """A short key k with start <= k < limit (LevelDB's bytewise rule)."""
  n = min(len(start), len(limit))
  i = 0
  while i < n and start[i] == limit[i]:
    i += 1
  if i < n:
    b = start[i]
    if b < 0xff and b + 1 < limit[i]:
      return start[:i] + bytes([b + 1])
  return start


def build_table(
    items: Iterable[Tuple[bytes, bytes]],
    block_size: int = DEFAULT_BLOCK_SIZE,
    restart_interval: int = DEFAULT_RESTART_INTERVAL,
) -> bytes:
  """Serializes (key, value) pairs, strictly increasing by key, as a table."""
  out = bytearray()
  data_block = _BlockBuilder(restart_interval)
  index_block = _BlockBuilder(1)
  pending: Optional[Tuple[bytes, BlockHandle]] = None  # (last key, handle)

  def write_block(contents: bytes) -> BlockHandle:
    handle = BlockHandle(len(out), len(contents))
    out.extend(contents)
    trailer_type = bytes([_NO_COMPRESSION])
    out.extend(trailer_type)
    out.extend(struct.pack("<I", mask_crc(crc32c(trailer_type,
                                                 crc32c(contents)))))
    return handle

  prev = None
  for key, value in items:
    if prev is not None and key <= prev:
      raise ValueError("table keys must be strictly increasing: %r after %r" %
                       (key, prev))
    prev = key
    if pending is not None:
      index_block.add(_shortest_separator(pending[0], key),
                      pending[1].encode())
      pending = None
    data_block.add(key, value)
    if data_block.size_estimate() >= block_size:
      last = data_block.last_key
      pending = (last, write_block(data_block.finish()))
      data_block.reset()
  if not data_block.empty:
    last = data_block.last_key
    pending = (last, write_block(data_block.finish()))
  if pending is not None:
    index_block.add(_short_successor(pending[0]), pending[1].encode())
  metaindex_handle = write_block(_BlockBuilder(restart_interval).finish())
  index_handle = write_block(index_block.finish())
  footer = bytearray(metaindex_handle.encode() + index_handle.encode())
  footer.extend(b"\x00" * (FOOTER_SIZE - 8 - len(footer)))
  footer.extend(struct.pack("<II", TABLE_MAGIC & _U32, TABLE_MAGIC >> 32))
  out.extend(footer)
  return bytes(out)


def _key_bytes(key: Union[str, bytes]) -> bytes:
  return key if isinstance(key, bytes) else key.encode("utf-8")


def encode_index(header: BundleHeaderProto,
                 entries: Mapping[Union[str, bytes], BundleEntryProto],
                 **table_options) -> bytes:
  """Serializes a bundle index (header + entries sorted bytewise by key)."""
  items = [(HEADER_KEY, header.SerializeToString())]
  keyed = sorted((_key_bytes(k), v) for k, v in entries.items())
  for key, entry in keyed:
    if key == HEADER_KEY:
      raise ValueError("the empty key is reserved for the bundle header")
    items.append((key, entry.SerializeToString(deterministic=True)))
  return build_table(items, **table_options)


def write_index(prefix: str, header: BundleHeaderProto,
                entries: Mapping[Union[str, bytes], BundleEntryProto],
                **table_options) -> None:
  """Atomically writes `<prefix>.index` (see `encode_index`)."""
  fileio.atomic_write_bytes(index_path(prefix),
                            encode_index(header, entries, **table_options))


def new_header(num_shards: int = 1,
               like: Optional[BundleHeaderProto] = None) -> BundleHeaderProto:
  """A header for `num_shards` shards; endianness/version from `like`."""
  header = BundleHeaderProto()
  if like is not None:
    header.CopyFrom(like)
  else:
    header.endianness = BundleHeaderProto.LITTLE
    header.version.producer = _BUNDLE_PRODUCER_VERSION
  header.num_shards = num_shards
  return header


# ----------------------------------------------------------------------------
# Streaming copy.

DTypeLike = Union[tf.dtypes.DType, int]
ShapeLike = Optional[Sequence[Optional[int]]]


def _dtype_enum(dtype: DTypeLike) -> int:
  if isinstance(dtype, int):
    return dtype
  return tf.dtypes.as_dtype(dtype).as_datatype_enum


def _shape_list(shape: tensor_shape_pb2.TensorShapeProto) -> List[int]:
  return [d.size for d in shape.dim]


def _check_expected(new_key: str, entry: BundleEntryProto,
                    dtype: DTypeLike, shape: ShapeLike) -> None:
  got_dtype = entry.dtype
  if dtype is not None and _dtype_enum(dtype) != got_dtype:
    raise TensorMismatchError(
        "Tensor %r: checkpoint has dtype %s, expected %s" %
        (new_key, types_pb2.DataType.Name(got_dtype),
         types_pb2.DataType.Name(_dtype_enum(dtype))))
  if shape is not None:
    got = _shape_list(entry.shape)
    want = list(shape)
    if len(got) != len(want) or any(
        w is not None and w != g for g, w in zip(got, want)):
      raise TensorMismatchError(
          "Tensor %r: checkpoint has shape %s, expected %s" %
          (new_key, got, want))


@dataclasses.dataclass
class _Run:
  """A contiguous byte range of one source shard."""
  shard: int
  offset: int
  size: int


def _plan_runs(ranges: Sequence[Tuple[int, int, int]]) -> List[_Run]:
  """Merges sorted (shard, offset, size) ranges that touch into runs."""
  runs: List[_Run] = []
  for shard, offset, size in ranges:
    last = runs[-1] if runs else None
    if last and last.shard == shard and last.offset + last.size == offset:
      last.size += size
    else:
      runs.append(_Run(shard, offset, size))
  return runs


def copy_tensors(
    src_prefix: str,
    dst_prefix: str,
    key_map: Mapping[str, str],
    expected: Optional[Mapping[str, Tuple[Optional[DTypeLike],
                                          ShapeLike]]] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    copy_slices: bool = False,
) -> Dict[str, BundleEntryProto]:
  """Copies tensors between V2 checkpoints by streaming their stored bytes.

  Writes `<dst_prefix>.data-00000-of-00001` and then `<dst_prefix>.index`
  (each through a temporary sibling and a rename, the index last so that it
  marks a complete checkpoint).  Tensor bytes are neither decoded nor checked
  (the source entry's crc32c is carried over, so TensorFlow checks them on
  restore); one `chunk_size` buffer is the only memory used per tensor.
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
  header, src_entries = read_index(src_prefix, include_slice_keys=copy_slices)
  slices_of: Dict[str, List[Tuple[bytes, BundleEntryProto]]] = {}
  for key, entry in src_entries.items():
    if isinstance(key, bytes):
      name, encoded_slice = split_slice_key(key)
      slices_of.setdefault(name, []).append((encoded_slice, entry))
  # (new index key, source entry whose bytes it gets); sliced tensors add
  # their byte-less entry that lists the slices to `listing`.
  with_bytes: List[Tuple[Union[str, bytes], BundleEntryProto]] = []
  listing: Dict[str, BundleEntryProto] = {}
  for new_key in sorted(key_map):
    src_key = key_map[new_key]
    entry = src_entries.get(src_key)
    if entry is None:
      raise MissingTensorError(src_key, src_prefix)
    if expected and new_key in expected:
      dtype, shape = expected[new_key]
      _check_expected(new_key, entry, dtype, shape)
    if not entry.slices:
      with_bytes.append((new_key, entry))
      continue
    if not copy_slices:
      raise SlicedTensorError(src_key, src_prefix)
    stored = slices_of.get(src_key, [])
    if len(stored) != len(entry.slices):
      raise CorruptIndexError(
          "%s: tensor %r lists %d slices but %d are stored" %
          (index_path(src_prefix), src_key, len(entry.slices), len(stored)))
    listed = BundleEntryProto()
    listed.CopyFrom(entry)
    listed.ClearField("shard_id")
    listed.ClearField("offset")
    listing[new_key] = listed
    for encoded_slice, slice_entry in stored:
      with_bytes.append((make_slice_key(new_key, encoded_slice), slice_entry))

  # Unique source byte ranges in file order; new offsets are assigned in
  # that order so that the output is one sequential write.
  unique = sorted({(e.shard_id, e.offset, e.size) for _, e in with_bytes})
  new_offset = {}
  pos = 0
  for rng in unique:
    new_offset[rng] = pos
    pos += rng[2]
  total = pos

  num_src_shards = header.num_shards
  out_entries: Dict[Union[str, bytes], BundleEntryProto] = dict(listing)
  for new_key, src in with_bytes:
    entry = BundleEntryProto()
    entry.CopyFrom(src)
    entry.shard_id = 0
    entry.offset = new_offset[(src.shard_id, src.offset, src.size)]
    out_entries[new_key] = entry

  dst_dir = os.path.dirname(dst_prefix)
  if dst_dir and not tf.io.gfile.exists(dst_dir):
    tf.io.gfile.makedirs(dst_dir)
  out_path = data_path(dst_prefix, 0, 1)
  tmp = fileio.temp_sibling(out_path)
  try:
    with tf.io.gfile.GFile(tmp, "wb") as out:
      src_file = None
      src_shard = -1
      try:
        for run in _plan_runs(unique):
          if run.shard != src_shard:
            if src_file is not None:
              src_file.close()
            if not 0 <= run.shard < num_src_shards:
              raise CorruptIndexError(
                  "%s: entry refers to shard %d of %d" %
                  (index_path(src_prefix), run.shard, num_src_shards))
            src_file = tf.io.gfile.GFile(
                data_path(src_prefix, run.shard, num_src_shards), "rb")
            src_shard = run.shard
          _copy_range(src_file, out, run, chunk_size)
      finally:
        if src_file is not None:
          src_file.close()
    tf.io.gfile.rename(tmp, out_path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
  write_index(dst_prefix, new_header(1, like=header), out_entries)
  logging.info("Copied %d tensors (%d bytes) from %s to %s", len(key_map),
               total, src_prefix, dst_prefix)
  return {k: e for k, e in out_entries.items() if isinstance(k, str)}


def _copy_range(src: tf.io.gfile.GFile, out: tf.io.gfile.GFile, run: _Run,
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
