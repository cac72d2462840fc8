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

Decompression is done here rather than by `tarfile` ("r|*") because tarfile
silently accepts a stream that ends early.
"""

import bz2
import lzma
import os
import tarfile
import zlib
from typing import Optional, Set

from absl import logging
import tensorflow as tf

from hub_tf1.resolving import errors
from hub_tf1.resolving import paths

MODULE_PB = "tfhub_module.pb"
SAVED_MODEL_PB = "saved_model.pb"

_RAW_CHUNK = 64 << 10
_COPY_CHUNK = 1 << 20
_HISTORY = 64 << 10
# Tar headers, padding and the end blocks come on top of the file bytes.
_TAR_OVERHEAD_FACTOR = 2
_TAR_OVERHEAD_BYTES = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"

_MEMBER_KINDS = {
    tarfile.SYMTYPE: "is a symbolic link",
    tarfile.LNKTYPE: "is a hard link",
    tarfile.CHRTYPE: "is a character device",
    tarfile.BLKTYPE: "is a block device",
    tarfile.FIFOTYPE: "is a FIFO",
}


class _Codec:
  """Incremental decompressor with bounded output per call."""

  def __init__(self, kind: str):
    self.kind = kind
    self._pending = b""
    if kind == "gzip":
      self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif kind == "bzip2":
      self._d = bz2.BZ2Decompressor()
    elif kind == "xz":
      self._d = lzma.LZMADecompressor()
    else:
      self._d = None

  @property
  def eof(self) -> bool:
    return self._d is not None and self._d.eof

  @property
  def unused_data(self) -> bytes:
    return self._d.unused_data if self._d is not None else b""

  def needs_input(self) -> bool:
    if self._d is None or self.kind == "gzip":
      return not self._pending
    return self._d.needs_input and not self._pending

  def feed(self, data: bytes) -> None:
    self._pending += data

  def pull(self, max_len: int) -> bytes:
    if self._d is None:
      out, self._pending = self._pending[:max_len], self._pending[max_len:]
      return out
    if self._d.eof:
      return b""
    if self.kind == "gzip":
      out = self._d.decompress(self._pending, max_len)
      self._pending = self._d.unconsumed_tail
      return out
    data, self._pending = self._pending, b""
    return self._d.decompress(data, max_length=max_len)


def _detect(head: bytes) -> str:
  if head.startswith(_GZIP_MAGIC):
    return "gzip"
  if head.startswith(_BZIP2_MAGIC):
    return "bzip2"
  if head.startswith(_XZ_MAGIC):
    return "xz"
  return "none"


class DecompressingReader:
  """File-like view of the decompressed bytes of a raw (compressed) stream.

  Raises InvalidModuleArchiveError from `read()` when the raw stream ends
  inside a compressed stream, and ArchiveTooLargeError past `limit` bytes.
  Keeps the last bytes it delivered so the caller can look at the block where
  the tar reader stopped.
  """

  def __init__(self, raw, handle: str, limit: int):
    self._raw = raw
    self._handle = handle
    self._limit = limit
    self._codec = None  # type: Optional[_Codec]
    self._raw_eof = False
    self._finished = False
    self._delivered = 0
    self._history = bytearray()

  @property
  def compression(self) -> str:
    return self._codec.kind if self._codec else "none"

  def _read_raw(self) -> bytes:
    if self._raw_eof:
      return b""
    data = self._raw.read(_RAW_CHUNK)
    if not data:
      self._raw_eof = True
    return data

  def _start(self) -> None:
    head = b""
    while len(head) < 6:
      data = self._read_raw()
      if not data:
        break
      head += data
    self._codec = _Codec(_detect(head))
    self._codec.feed(head)

  def _next_member(self) -> bool:
    """After one compressed stream ended: starts the next, if there is one."""
    rest = self._codec.unused_data
    while len(rest) < 6 and not self._raw_eof:
      rest += self._read_raw()
    if not rest.strip(b"\0"):
      # Only padding (or nothing) left: drain padding and stop.
      while not self._raw_eof:
        more = self._read_raw()
        if more.strip(b"\0"):
          logging.warning("Ignoring data after the compressed archive of %s.",
                          self._handle)
          break
      return False
    if _detect(rest) != self._codec.kind:
      logging.warning("Ignoring data after the compressed archive of %s.",
                      self._handle)
      return False
    self._codec = _Codec(self._codec.kind)
    self._codec.feed(rest)
    return True

  def read(self, size: int = -1) -> bytes:
    if self._codec is None:
      self._start()
    if size is None or size < 0:
      size = _RAW_CHUNK
    while not self._finished and size:
      out = self._codec.pull(size)
      if out:
        self._deliver(out)
        return out
      if self._codec.eof:
        if not self._next_member():
          self._finished = True
        continue
      if self._codec.needs_input():
        data = self._read_raw()
        if not data:
          if self._codec.kind != "none":
            raise errors.InvalidModuleArchiveError(
                self._handle, "the %s stream ends prematurely (truncated "
                "download or file?)" % self._codec.kind)
          self._finished = True
          continue
        self._codec.feed(data)
    return b""

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
    """Reads (and checks) the rest of the stream."""
    while self.read(_RAW_CHUNK):
      pass


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
