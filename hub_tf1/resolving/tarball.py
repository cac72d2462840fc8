"""Safe, streaming extraction of a module tarball, and its verification.

Stronger than the original in four ways:

* Only regular files and directories are extracted.  `..` components and
  absolute member names are refused (the original re-rooted absolute names),
  as are symlinks, hard links, devices and FIFOs.
* The total extracted size is limited (`HUB_TF1_MAX_MODULE_BYTES`), so a small
  archive that expands to terabytes is stopped early.
* Truncation is detected everywhere, also exactly at a member boundary: the
  compressed stream must end properly (gzip/bzip2/xz end marker and checksum)
  and the tar stream must reach its end-of-archive block.
* The extracted directory must hold `tfhub_module.pb` and `saved_model.pb`.

Decompression uses the standard library's `gzip`/`bz2`/`lzma` file objects
(which read non-seekable streams, follow multi-member files and raise on
truncation) rather than `tarfile`'s "r|*", which silently accepts a stream
that ends early.  This file only adds what they lack: format detection, the
size cap, remembering the last bytes for the end-of-archive check, and errors
that name the handle.
"""

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from typing import Optional, Set

from absl import logging
import tensorflow as tf

from hub_tf1.format import module_files
from hub_tf1.resolving import errors
from hub_tf1.resolving import paths

MODULE_PB = module_files.MODULE_DEF_FILENAME
SAVED_MODEL_PB = module_files.SAVED_MODEL_FILENAME

_RAW_CHUNK = 64 << 10
_COPY_CHUNK = 1 << 20
_HISTORY = 64 << 10
# Tar headers, padding and the end blocks come on top of the file bytes.
_TAR_OVERHEAD_FACTOR = 2
_TAR_OVERHEAD_BYTES = 1 << 20

# Magic bytes: compression name, in detection order.
_MAGICS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_MAGIC_LEN = max(len(m) for m, _ in _MAGICS)

# What the standard library raises for bad compressed data (OSError covers
# gzip.BadGzipFile and bz2's "Invalid data stream").
_CODEC_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)

_MEMBER_KINDS = {
    tarfile.SYMTYPE: "is a symbolic link",
    tarfile.LNKTYPE: "is a hard link",
    tarfile.CHRTYPE: "is a character device",
    tarfile.BLKTYPE: "is a block device",
    tarfile.FIFOTYPE: "is a FIFO",
}


class _Source:
  """The raw stream with its first bytes put back after detection.

  Remembers an exception raised by the raw stream, so that it is told apart
  from the decompressor's own errors (and passed on unchanged).
  """

  def __init__(self, raw):
    self._raw = raw
    self._head = b""
    self.error = None  # type: Optional[BaseException]
    while len(self._head) < _MAGIC_LEN:
      data = self._read_raw(_RAW_CHUNK)
      if not data:
        break
      self._head += data

  @property
  def head(self) -> bytes:
    return self._head

  def _read_raw(self, size: int) -> bytes:
    try:
      return self._raw.read(size)
    except BaseException as e:
      self.error = e
      raise

  def read(self, size: int = -1) -> bytes:
    if self._head:
      if size is None or size < 0:
        size = len(self._head)
      out, self._head = self._head[:size], self._head[size:]
      return out
    return self._read_raw(_RAW_CHUNK if size is None or size < 0 else size)


def _open_decompressed(source: _Source):
  """(compression name, file object of the decompressed bytes)."""
  for magic, kind in _MAGICS:
    if source.head.startswith(magic):
      if kind == "gzip":
        return kind, gzip.GzipFile(fileobj=source, mode="rb")
      if kind == "bzip2":
        return kind, bz2.BZ2File(source, mode="rb")
      return kind, lzma.LZMAFile(source, mode="rb")
  return "none", source


class DecompressingReader:
  """File-like view of the decompressed bytes of a raw (compressed) stream.

  Raises InvalidModuleArchiveError from `read()` when the compressed stream
  is damaged or ends early, and ArchiveTooLargeError past `limit` bytes.
  Errors of the raw stream itself pass unchanged.  Keeps the last bytes it
  delivered so the caller can look at the block where the tar reader stopped.
  """

  def __init__(self, raw, handle: str, limit: int):
    self._handle = handle
    self._limit = limit
    self._source = _Source(raw)
    self.compression, self._file = _open_decompressed(self._source)
    self._delivered = 0
    self._history = bytearray()
    self._codec_error = None  # type: Optional[BaseException]

  def read(self, size: int = -1) -> bytes:
    if size is None or size < 0:
      size = _RAW_CHUNK
    try:
      out = self._file.read(size)
    except _CODEC_ERRORS as e:
      if e is self._source.error:
        raise
      self._codec_error = e
      if isinstance(e, EOFError):
        reason = "the %s stream ends prematurely (truncated download or " \
                 "file?)" % self.compression
      else:
        reason = "the %s stream is damaged (%s)" % (self.compression, e)
      raise errors.InvalidModuleArchiveError(self._handle, reason) from None
    self._deliver(out)
    return out

  def _deliver(self, out: bytes) -> None:
    self._delivered += len(out)
    if self._delivered > self._limit:
      raise errors.ArchiveTooLargeError(
          self._handle, "(archive)",
          "expands to more than %d bytes; the limit is set by "
          "HUB_TF1_MAX_MODULE_BYTES" % self._limit)
    self._history += out
    if len(self._history) > 2 * _HISTORY:
      del self._history[:-_HISTORY]

  def bytes_at(self, offset: int, size: int) -> Optional[bytes]:
    """Delivered bytes [offset, offset+size) if still remembered."""
    start = self._delivered - len(self._history)
    if offset < start or offset + size > self._delivered:
      return None
    return bytes(self._history[offset - start:offset - start + size])

  def drain(self) -> None:
    """Reads (and checks) the rest of the stream after the tar archive.

    Bytes after the last compressed stream that do not start another one are
    ignored with a warning for gzip (bzip2 and xz: the standard library
    ignores them silently).
    """
    try:
      while self.read(_RAW_CHUNK):
        pass
    except errors.InvalidModuleArchiveError:
      if not _is_trailing_garbage(self._codec_error):
        raise
      logging.warning("Ignoring data after the compressed archive of %s.",
                      self._handle)


def _is_trailing_garbage(e: Optional[BaseException]) -> bool:
  """Whether `e` is gzip's complaint about bytes that start no new member."""
  return isinstance(e, gzip.BadGzipFile) and "Not a gzipped file" in str(e)


def _safe_relpath(member: tarfile.TarInfo, handle: str) -> str:
  """The member's path inside the module dir; refuses escaping names."""
  name = member.name
  if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
    raise errors.UnsafeArchiveError(
        handle, name, "has an absolute path (Relative path %r is invalid)"
        % name)
  parts = [p for p in name.split("/") if p not in ("", ".")]
  if ".." in parts:
    raise errors.UnsafeArchiveError(
        handle, name, "has a '..' component that would leave the module "
        "directory (Relative path %r is invalid)" % name)
  return "/".join(parts)


def extract(fileobj, dst_dir: str, handle: str, max_bytes: int) -> int:
  """Extracts a module tarball read from `fileobj` into `dst_dir`.

  Args:
    fileobj: object with `read(n)` giving the raw (maybe compressed) bytes.
    dst_dir: existing, empty directory (any tf.io.gfile path).
    handle: the module handle, for error messages.
    max_bytes: limit on the total size of the extracted files.

  Returns:
    The number of file bytes written.

  Raises:
    InvalidModuleArchiveError: not a (complete) tar archive of a module.
    UnsafeArchiveError: a member that must not be extracted, or too many bytes.
  """
  reader = DecompressingReader(
      fileobj, handle, limit=_TAR_OVERHEAD_FACTOR * max_bytes +
      _TAR_OVERHEAD_BYTES)
  try:
    tar = tarfile.open(fileobj=reader, mode="r|")
  except tarfile.TarError as e:
    raise errors.InvalidModuleArchiveError(
        handle, "not a tar archive (%s)" % e) from None
  total = 0
  made_dirs = set()  # type: Set[str]
  with tar:
    try:
      for member in tar:
        rel = _safe_relpath(member, handle)
        target = os.path.join(dst_dir, rel) if rel else dst_dir
        if member.isdir():
          _makedirs(target, made_dirs)
        elif member.isfile():
          if not rel:
            raise errors.UnsafeArchiveError(handle, member.name,
                                            "is a file in place of the root")
          if total + member.size > max_bytes:
            raise errors.ArchiveTooLargeError(
                handle, member.name,
                "(%d bytes) would bring the module beyond the limit of %d "
                "bytes set by HUB_TF1_MAX_MODULE_BYTES" %
                (member.size, max_bytes))
          _makedirs(os.path.dirname(target), made_dirs)
          total += _copy_member(tar, member, target)
        else:
          kind = _MEMBER_KINDS.get(member.type,
                                   "has the unsupported type %r" % member.type)
          if member.issym() or member.islnk():
            kind += " (to %r)" % member.linkname
          raise errors.UnsafeArchiveError(
              handle, member.name,
              kind + " (Unexpected object type in tar archive: %s); a module "
              "archive may hold only regular files and directories"
              % member.type)
      _check_end_of_archive(tar, reader, handle)
    except tarfile.TarError as e:
      raise errors.InvalidModuleArchiveError(
          handle, "broken tar archive (%s)" % e) from None
  reader.drain()
  return total


def _makedirs(path: str, made: Set[str]) -> None:
  if path not in made:
    tf.io.gfile.makedirs(path)
    made.add(path)


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo,
                 target: str) -> int:
  src = tar.extractfile(member)
  written = 0
  with tf.io.gfile.GFile(target, "wb") as dst:
    while True:
      buf = src.read(_COPY_CHUNK)
      if not buf:
        break
      dst.write(buf)
      written += len(buf)
  return written


def _check_end_of_archive(tar: tarfile.TarFile, reader: DecompressingReader,
                          handle: str) -> None:
  """Tar iteration stopped: was it on an end-of-archive block?

  tarfile also stops quietly at end of data or at a damaged header; only a
  full block of zeros right where it stopped is the real end.
  """
  offset = tar.offset
  pos = tar.fileobj.tell()
  block = reader.bytes_at(offset, tarfile.BLOCKSIZE)
  if (pos - offset == tarfile.BLOCKSIZE and block is not None and
      not block.strip(b"\0")):
    return
  if pos == offset:
    reason = "the tar archive ends without its end-of-archive marker " \
             "(truncated download or file?)"
  else:
    reason = "the tar archive is truncated or damaged at offset %d" % offset
  raise errors.InvalidModuleArchiveError(handle, reason)


def verify_module_dir(path: str, handle: str) -> None:
  """Checks that an extracted archive looks like a TF1 Hub module.

  Raises:
    InvalidModuleArchiveError: `tfhub_module.pb` or `saved_model.pb` missing
      or empty.
  """
  for name in (MODULE_PB, SAVED_MODEL_PB):
    if not paths.non_empty_file(os.path.join(path, name)):
      raise errors.InvalidModuleArchiveError(
          handle, "the archive has no (non-empty) %s at its root, so it is "
          "not a module in the TF1 Hub format" % name)
