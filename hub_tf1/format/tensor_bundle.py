"""Reads and writes TensorFlow V2 checkpoint ("tensor bundle") indexes.

A V2 checkpoint `<prefix>` consists of `<prefix>.index` and data shards
`<prefix>.data-<i>-of-<n>` (both numbers with five digits).  The index is a
LevelDB-style sorted string table (`_sstable`): the empty key maps to a
serialized `BundleHeaderProto`; every other key is a tensor name mapping to a
serialized `BundleEntryProto` that says in which shard, at which offset and
with which size and crc32c the tensor's bytes are stored.  Partitioned tensors
saved from slices have an entry with `slices` set plus one entry per slice
under binary keys that start with a zero byte.

Rules of this file:
- Only the index is parsed and written here; tensor bytes are never read
  (streaming them between checkpoints is `bundle_copy`).
- Tensor names are `str` keys; internal slice keys stay `bytes`, so the two
  can never be confused in an entries dict.
- Indexes are written deterministically (keys sorted bytewise, protos
  serialized deterministically), so re-encoding an index TensorFlow wrote
  gives the same bytes, and always atomically (`fileio.atomic_write_bytes`).
- The table primitives (`_sstable`, `_crc32c`) are re-exported here under
  their historical names; callers outside `hub_tf1/format/` use this module,
  never the private ones.  Every error is a `TensorBundleError`.
"""

from typing import Dict, Mapping, Optional, Tuple, Union

import tensorflow as tf

from tensorflow.core.protobuf import tensor_bundle_pb2

from hub_tf1 import fileio
from hub_tf1.format import _crc32c
from hub_tf1.format import _sstable

BundleHeaderProto = tensor_bundle_pb2.BundleHeaderProto
BundleEntryProto = tensor_bundle_pb2.BundleEntryProto

# Re-exported table primitives and errors (see the file comment).
TensorBundleError = _sstable.TensorBundleError
CorruptIndexError = _sstable.CorruptIndexError
BlockHandle = _sstable.BlockHandle
TABLE_MAGIC = _sstable.TABLE_MAGIC
FOOTER_SIZE = _sstable.FOOTER_SIZE
BLOCK_TRAILER_SIZE = _sstable.BLOCK_TRAILER_SIZE
DEFAULT_BLOCK_SIZE = _sstable.DEFAULT_BLOCK_SIZE
DEFAULT_RESTART_INTERVAL = _sstable.DEFAULT_RESTART_INTERVAL
crc32c = _crc32c.crc32c
mask_crc = _crc32c.mask_crc
unmask_crc = _crc32c.unmask_crc
iter_table = _sstable.iter_table
build_table = _sstable.build_table

HEADER_KEY = b""
# Version TensorFlow's BundleWriter stamps into new headers.
_BUNDLE_PRODUCER_VERSION = 1


# ----------------------------------------------------------------------------
# Errors of `bundle_copy.copy_tensors` (lookups in a source index); kept here
# with the other bundle errors, all `TensorBundleError`s.


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
# Slice keys.


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

  Raises:
    CorruptIndexError: `key` is not a well-formed slice key.
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


# ----------------------------------------------------------------------------
# Paths and the index.


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


def _key_bytes(key: Union[str, bytes]) -> bytes:
  return key if isinstance(key, bytes) else key.encode("utf-8")


def encode_index(header: BundleHeaderProto,
                 entries: Mapping[Union[str, bytes], BundleEntryProto],
                 **table_options) -> bytes:
  """Serializes a bundle index (header + entries sorted bytewise by key).

  Raises:
    ValueError: an entry has the empty key (reserved for the header).
  """
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
