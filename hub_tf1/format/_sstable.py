"""LevelDB-style sorted string tables, as TensorFlow's tensor bundles use them.

Rules of this file:
- Pure byte encoding and decoding: no file access, no TensorFlow, no protos
  (checksums come from `_crc32c`).
  The caller reads or writes the whole serialized table (a bundle index is
  small); `tensor_bundle` is the only intended user.
- Only the subset TensorFlow writes for checkpoints is supported; anything
  else (snappy blocks, bad checksums, bad magic) raises `CorruptIndexError`,
  never a bare `IndexError`/`struct.error`.
- Output is deterministic: the same items and options give the same bytes,
  and TensorFlow's own tables re-encode byte for byte.

Table layout:

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
import struct
from typing import Iterable, Iterator, List, Optional, Tuple

from hub_tf1 import errors
from hub_tf1.format import _crc32c

TABLE_MAGIC = 0xdb4775248b80fb57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
# TensorFlow's `table::Options` defaults, also used for tensor bundles.
DEFAULT_BLOCK_SIZE = 256 * 1024
DEFAULT_RESTART_INTERVAL = 16

_NO_COMPRESSION = 0
_SNAPPY_COMPRESSION = 1
_U32 = 0xffffffff


class TensorBundleError(errors.Error, ValueError):
  """Base class of the errors raised for tensor bundles (checkpoints)."""


class CorruptIndexError(TensorBundleError):
  """The index file is not a valid tensor-bundle table."""


# ----------------------------------------------------------------------------
# Varints and block handles.


def put_varint(out: bytearray, value: int) -> None:
  """Appends `value` (>= 0) to `out` as a little-endian base-128 varint."""
  while value >= 0x80:
    out.append((value & 0x7f) | 0x80)
    value >>= 7
  out.append(value)


def get_varint(buf: bytes, pos: int, limit: int,
               max_bits: int = 64) -> Tuple[int, int]:
  """Decodes a varint at `pos`; returns (value, position after it).

  Raises:
    CorruptIndexError: the varint runs past `limit` or `max_bits`.
  """
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
    put_varint(out, self.offset)
    put_varint(out, self.size)
    return bytes(out)

  @classmethod
  def decode(cls, buf: bytes, pos: int = 0) -> Tuple["BlockHandle", int]:
    offset, pos = get_varint(buf, pos, len(buf))
    size, pos = get_varint(buf, pos, len(buf))
    return cls(offset, size), pos


# ----------------------------------------------------------------------------
# Reading.


def read_block(data: bytes, handle: BlockHandle, name: str) -> bytes:
  """Returns the checked contents of the block at `handle` in `data`.

  Raises:
    CorruptIndexError: truncated block, checksum mismatch, or a compressed
      or unknown block type.
  """
  end = handle.offset + handle.size
  if end + BLOCK_TRAILER_SIZE > len(data):
    raise CorruptIndexError("%s: truncated block at offset %d" %
                            (name, handle.offset))
  contents = data[handle.offset:end]
  kind = data[end]
  (stored,) = struct.unpack_from("<I", data, end + 1)
  actual = _crc32c.crc32c(data[handle.offset:end + 1])
  if _crc32c.unmask_crc(stored) != actual:
    raise CorruptIndexError("%s: block checksum mismatch at offset %d" %
                            (name, handle.offset))
  if kind == _SNAPPY_COMPRESSION:
    raise CorruptIndexError(
        "%s: snappy-compressed table blocks are not supported (TensorFlow "
        "never writes them for checkpoints)" % name)
  if kind != _NO_COMPRESSION:
    raise CorruptIndexError("%s: bad block type %d" % (name, kind))
  return contents


def iter_block(contents: bytes, name: str) -> Iterator[Tuple[bytes, bytes]]:
  """Yields the (key, value) pairs of one block's contents."""
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
    shared, pos = get_varint(contents, pos, limit, 32)
    non_shared, pos = get_varint(contents, pos, limit, 32)
    value_len, pos = get_varint(contents, pos, limit, 32)
    if shared > len(key) or pos + non_shared + value_len > limit:
      raise CorruptIndexError("%s: bad block entry at offset %d" % (name, pos))
    key = key[:shared] + contents[pos:pos + non_shared]
    pos += non_shared
    yield key, contents[pos:pos + value_len]
    pos += value_len


def iter_table(data: bytes,
               name: str = "table") -> Iterator[Tuple[bytes, bytes]]:
  """Yields the (key, value) pairs of a serialized table, in file order.

  Raises:
    CorruptIndexError: `data` is not a valid table (`name` is in the message).
  """
  if len(data) < FOOTER_SIZE:
    raise CorruptIndexError("%s: file is too short to be an sstable" % name)
  footer = data[-FOOTER_SIZE:]
  magic_lo, magic_hi = struct.unpack_from("<II", footer, FOOTER_SIZE - 8)
  if (magic_hi << 32) | magic_lo != TABLE_MAGIC:
    raise CorruptIndexError("%s: not an sstable (bad magic number)" % name)
  _, pos = BlockHandle.decode(footer, 0)  # Metaindex: unused by bundles.
  index_handle, _ = BlockHandle.decode(footer, pos)
  index = read_block(data, index_handle, name)
  for _, handle_bytes in iter_block(index, name):
    handle, _ = BlockHandle.decode(handle_bytes)
    yield from iter_block(read_block(data, handle, name), name)


# ----------------------------------------------------------------------------
# Writing.


class BlockBuilder:
  """Accumulates sorted entries of one block with prefix-compressed keys."""

  def __init__(self, restart_interval: int):
    self._interval = restart_interval
    self.reset()

  def reset(self) -> None:
    self._buf = bytearray()
    self._restarts: List[int] = [0]
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
    put_varint(self._buf, shared)
    put_varint(self._buf, len(key) - shared)
    put_varint(self._buf, len(value))
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
  """Serializes (key, value) pairs, strictly increasing by key, as a table.

  Raises:
    ValueError: the keys are not strictly increasing.
  """
  out = bytearray()
  data_block = BlockBuilder(restart_interval)
  index_block = BlockBuilder(1)
  pending: Optional[Tuple[bytes, BlockHandle]] = None  # (last key, handle)

  def write_block(contents: bytes) -> BlockHandle:
    handle = BlockHandle(len(out), len(contents))
    out.extend(contents)
    trailer_type = bytes([_NO_COMPRESSION])
    out.extend(trailer_type)
    out.extend(struct.pack("<I", _crc32c.mask_crc(
        _crc32c.crc32c(trailer_type, _crc32c.crc32c(contents)))))
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
  metaindex_handle = write_block(BlockBuilder(restart_interval).finish())
  index_handle = write_block(index_block.finish())
  footer = bytearray(metaindex_handle.encode() + index_handle.encode())
  footer.extend(b"\x00" * (FOOTER_SIZE - 8 - len(footer)))
  footer.extend(struct.pack("<II", TABLE_MAGIC & _U32, TABLE_MAGIC >> 32))
  out.extend(footer)
  return bytes(out)
