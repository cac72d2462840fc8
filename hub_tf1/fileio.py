"""Atomic file-system writes through `tf.io.gfile`.

Everything hub_tf1 writes (modules, cache entries, exports) goes through these
helpers so that a reader never sees a half-written file or directory: data is
written to a uniquely named temporary sibling and renamed into place.  Using
`tf.io.gfile` keeps gs:// and the other TensorFlow file systems working.
"""

import contextlib
import os
import re
import uuid
from typing import IO, Iterator

import tensorflow as tf


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(path: str) -> str:
  """The `scheme` of a `scheme://...` path as written, or "" for a plain path."""
  match = _URL_SCHEME.match(path)
  return match.group(1) if match else ""


def temp_sibling(path: str, tag: str = "tmp") -> str:
  """A fresh name next to `path` (same directory, so rename stays cheap)."""
  path = path.rstrip("/")
  return "%s.%s%s" % (path, tag, uuid.uuid4().hex)


@contextlib.contextmanager
def atomic_writer(path: str, overwrite: bool = True) -> Iterator[IO[bytes]]:
  """Yields a binary file whose content appears at `path` on success only.

  The streaming form of `atomic_write_bytes` (for data too large to hold in
  memory): written to a temporary sibling, renamed to `path` when the `with`
  body finished without an exception, removed in any case.

  Args:
    path: the file to write (any tf.io.gfile path).
    overwrite: whether an existing `path` is replaced.

  Raises:
    tf.errors.AlreadyExistsError: `path` exists and `overwrite` is False.
  """
  tmp = temp_sibling(path)
  try:
    with tf.io.gfile.GFile(tmp, "wb") as f:
      yield f
    tf.io.gfile.rename(tmp, path, overwrite=overwrite)
  finally:
    remove_tree(tmp)


def atomic_write_bytes(path: str, data: bytes, overwrite: bool = True) -> None:
  """Writes `data` to `path` via a temporary sibling and a rename.

  Readers see either the old file (or none) or all of `data`, never a part.
  With `overwrite=False` the rename refuses an existing `path`; that check is
  as atomic as the file system's rename makes it (the download lock relies on
  it only on file systems without exclusive create, see resolving/lock.py).
  The temporary file is removed in any case.

  Args:
    path: the file to write (any tf.io.gfile path).
    data: its new content.
    overwrite: whether an existing `path` is replaced.

  Raises:
    tf.errors.AlreadyExistsError: `path` exists and `overwrite` is False
      (some file systems raise tf.errors.FailedPreconditionError instead).
  """
  with atomic_writer(path, overwrite=overwrite) as f:
    f.write(data)


def remove_tree(path: str) -> None:
  """Deletes `path` (a file or a directory tree) if it exists.

  A path that is missing, or that another process deletes meanwhile, is fine.
  """
  try:
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      tf.io.gfile.remove(path)
  except tf.errors.NotFoundError:
    pass


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
  """Yields a temporary sibling directory that is renamed to `path` on success.

  The directory is only visible under `path` once the `with` body finished
  without an exception; on an exception the temporary directory is removed.
  `path` must not exist yet, or be an empty directory (as `mkdtemp` makes).

  Raises:
    tf.errors.AlreadyExistsError: `path` exists and is not an empty directory.
  """
  path = path.rstrip("/")
  replace_empty = False
  if tf.io.gfile.exists(path):
    if not tf.io.gfile.isdir(path) or tf.io.gfile.listdir(path):
      raise tf.errors.AlreadyExistsError(
          None, None, "Cannot write to %s: it already exists." % path)
    replace_empty = True
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp = temp_sibling(path, tag="partial-")
  tf.io.gfile.makedirs(tmp)
  try:
    yield tmp
    if replace_empty:
      if tf.io.gfile.listdir(path):
        raise tf.errors.AlreadyExistsError(
            None, None, "Cannot write to %s: files appeared in it." % path)
      tf.io.gfile.rmtree(path)
    tf.io.gfile.rename(tmp, path, overwrite=False)
  finally:
    remove_tree(tmp)
