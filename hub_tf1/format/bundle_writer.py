"""Writes a one-shard V2 checkpoint from tensors that arrive in chunks.

TensorFlow's SaveV2 copies each tensor through a buffer, checksums it and
writes it, one after the other on one thread: for 1 GB that is 0.19 s of
user time before and between the kernel's 0.24 s of copying into the page
cache (bench/RESULTS.md, the Module.export row, tensorflow_hub's column).
Here a second thread writes chunk i while the caller's thread checksums it
and makes the next.

Rules of this file:
- Whole tensors of fixed-size dtypes only (no slices, no strings, resources
  or variants), written little-endian in C order as SaveV2 writes them on a
  little-endian machine; `supports` says when a caller must use SaveV2.
- The checksum comes from the `crc32c` package (C, hardware instructions,
  releases the GIL for large buffers); without it `available()` is False.
- At most `_QUEUED_CHUNKS` batches of chunks (`_Writer`) wait for the
  writer thread, so memory stays at a few chunks, never a whole tensor.
- The data file is written in place: callers write into a directory that is
  renamed into view when complete (module_files.write_module).  The index is
  written last, atomically; a failed write raises and leaves no index.
- Chunk sizes are checked against each tensor's shape and dtype: a short or
  long stream is an error, not a wrong checkpoint.
"""

import queue
import sys
import threading
from typing import Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.format import tensor_bundle

try:
  import crc32c as _crc32c_c  # pylint: disable=g-import-not-at-top
except ImportError:  # The optional package is missing: SaveV2 it is.
  _crc32c_c = None

_QUEUED_CHUNKS = 2
_BATCH_BYTES = 1 << 20
_UNSUPPORTED_DTYPES = frozenset([tf.string, tf.resource, tf.variant])


class BundleWriteError(tensor_bundle.TensorBundleError):
  """The chunks given for a tensor do not add up to its size."""


class StreamedTensor(NamedTuple):
  """One tensor to write: its key, dtype, shape and its bytes in chunks.

  `chunks` yields numpy arrays (any shape; their bytes in order are the
  tensor's C-order bytes) and is consumed on the caller's thread.
  """
  key: str
  dtype: tf.DType
  shape: Tuple[int, ...]
  chunks: Iterable[np.ndarray]


def available() -> bool:
  """Whether this writer can run here (the `crc32c` package is installed)."""
  return _crc32c_c is not None and sys.byteorder == "little"


def supports(dtype: tf.DType) -> bool:
  """Whether tensors of `dtype` can be written by `write_bundle`."""
  return dtype.base_dtype not in _UNSUPPORTED_DTYPES


def _byte_view(array: np.ndarray) -> memoryview:
  """The bytes of `array` without a copy (any fixed-size dtype)."""
  return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def byte_pieces(array: np.ndarray, size: int) -> Iterator[memoryview]:
  """The bytes of `array` (no copy) in pieces of at most `size`: chunks.

  Args:
    array: a C-contiguous array (or numpy scalar) of a supported dtype.
    size: the most bytes per piece.

  Returns:
    The pieces, in order; none for an empty array.
  """
  data = _byte_view(array)
  return (data[start:start + size] for start in range(0, data.nbytes, size))


class _Writer(threading.Thread):
  """Writes the queued chunks, in order, while the caller makes the next.

  Chunks are handed over in batches of `_BATCH_BYTES` or more (a chunk that
  large is a batch by itself; the last batch may be smaller): each
  hand-over switches threads, which costs more than writing a small
  tensor.  After an error it keeps taking batches (and drops them) until
  the end marker, so the producer is never left blocked on a full queue.
  """

  def __init__(self, out):
    super().__init__(name="hub_tf1_bundle_writer", daemon=True)
    self.chunks = queue.Queue(maxsize=_QUEUED_CHUNKS)
    self.error: Optional[BaseException] = None
    self._out = out
    self._batch: List[memoryview] = []
    self._batch_bytes = 0

  def add(self, data: memoryview) -> None:
    """Queues `data` for writing (it must not change until written)."""
    self._batch.append(data)
    self._batch_bytes += data.nbytes
    if self._batch_bytes >= _BATCH_BYTES:
      self._hand_over()

  def finish(self) -> None:
    """Queues what is left and the end marker; returns when all is written."""
    self._hand_over()
    self.chunks.put(None)
    self.join()

  def _hand_over(self) -> None:
    if self._batch:
      self.chunks.put(self._batch)
      self._batch, self._batch_bytes = [], 0

  def run(self):
    while True:
      batch = self.chunks.get()
      if batch is None:
        return
      if self.error is not None:
        continue
      try:
        for data in batch:
          self._out.write(data)
      except BaseException as e:  # pylint: disable=broad-except
        self.error = e  # Re-raised on the caller's thread.


def _open_data_file(path: str):
  """The data shard for writing; a local file takes buffers without a copy.

  `tf.io.gfile.GFile.write` accepts only bytes (a copy of every chunk), so
  local paths use the built-in file; other file systems get the copy.
  """
  if fileio.url_scheme(path) in ("", "file"):
    local = path[len("file://"):] if path.startswith("file://") else path
    return open(local, "wb", buffering=0)  # pylint: disable=consider-using-with
  return _BytesGFile(tf.io.gfile.GFile(path, "wb"))


class _BytesGFile:
  """A GFile that takes buffers (copied to bytes, which GFile needs)."""

  def __init__(self, gfile):
    self._gfile = gfile

  def write(self, data):
    self._gfile.write(bytes(data))

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    return self._gfile.__exit__(*exc_info)


def write_bundle(prefix: str, tensors: Iterable[StreamedTensor]) -> None:
  """Writes `<prefix>.data-00000-of-00001` and `<prefix>.index`.

  Args:
    prefix: the checkpoint prefix (its directory exists).
    tensors: the tensors, each key once; entries are indexed by key.

  Raises:
    RuntimeError: `available()` is False.
    ValueError: a dtype `supports` refuses, or a key given twice.
    BundleWriteError: a tensor's chunks are not as many bytes as its shape
      and dtype need.
    tf.errors.OpError, OSError: as raised by producing or writing a chunk.
  """
  if not available():
    raise RuntimeError("bundle_writer needs the 'crc32c' package on a "
                       "little-endian machine; use SaveV2")
  entries = {}
  offset = 0
  with _open_data_file(tensor_bundle.data_path(prefix, 0, 1)) as out:
    writer = _Writer(out)
    writer.start()
    try:
      for tensor in tensors:
        if tensor.key in entries:
          raise ValueError("tensor %r is given twice" % tensor.key)
        entries[tensor.key] = _new_entry(tensor, offset)
        written, crc = _stream(writer, tensor)
        entries[tensor.key].crc32c = tensor_bundle.mask_crc(crc)
        if writer.error is not None:
          break  # Raised below, once the thread has stopped.
        _check_size(tensor, written, entries[tensor.key].size)
        offset += written
    finally:
      writer.finish()
    if writer.error is not None:
      raise writer.error
  tensor_bundle.write_index(prefix, tensor_bundle.new_header(1), entries)


def _new_entry(tensor: StreamedTensor, offset: int):
  """The index entry of `tensor` at `offset` (crc32c filled in later)."""
  if not supports(tensor.dtype):
    raise ValueError("cannot stream %r of dtype %s; it needs SaveV2" %
                     (tensor.key, tensor.dtype.name))
  entry = tensor_bundle.BundleEntryProto()
  entry.dtype = tensor.dtype.base_dtype.as_datatype_enum
  entry.shape.SetInParent()  # Present for scalars too, as TensorFlow has it.
  for size in tensor.shape:
    entry.shape.dim.add(size=size)
  entry.shard_id = 0
  entry.offset = offset
  count = 1
  for size in tensor.shape:
    count *= size
  entry.size = count * tensor.dtype.base_dtype.size
  return entry


def _stream(writer: _Writer, tensor: StreamedTensor) -> Tuple[int, int]:
  """Checksums and queues the chunks of `tensor`: (bytes, crc32c)."""
  written = crc = 0
  for chunk in tensor.chunks:
    if writer.error is not None:
      break
    data = _byte_view(chunk)
    writer.add(data)  # Written while it is checksummed here.
    crc = _crc32c_c.crc32c(data, crc)
    written += data.nbytes
  return written, crc


def _check_size(tensor: StreamedTensor, written: int, expected: int) -> None:
  if written != expected:
    raise BundleWriteError(
        "tensor %r (%s, shape %s): the chunks hold %d bytes, expected %d" %
        (tensor.key, tensor.dtype.name, list(tensor.shape), written, expected))

