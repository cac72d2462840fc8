"""Looking after a cache directory: list, prefetch, remove (`hub-tf1 cache`).

Rules of this file:
* It works on the layout of cache.py and nothing else: an entry is
  `<root>/<sha1(handle)>/`, named by its `.descriptor.txt` when there is one.
* Prefetch is `resolve` with the cache directory and progress display chosen
  here, so a prefetched cache is exactly what a job would have downloaded
  (copy the directory to an air-gapped machine and point TFHUB_CACHE_DIR at
  it; TFHUB_CACHE_ONLY=1 there makes a forgotten module an error, not a
  connection attempt).
* Remove holds the entry's download lock, renames the entry aside (readers
  see the whole module or none) and only then deletes it.
"""

import contextlib
import dataclasses
import os
import re
import uuid
from typing import Dict, Iterator, List, Optional

import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.resolving import cache
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import lock as lock_lib
from hub_tf1.resolving import paths

_KEY_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclasses.dataclass(frozen=True)
class Entry:
  """One module directory of a cache."""
  key: str
  path: str
  handle: Optional[str]  # From the descriptor; None when there is none.
  complete: bool
  size_bytes: int
  downloaded: Optional[str]  # The descriptor's "Download Time".


def _descriptor_fields(module_dir: str) -> dict:
  fields = {}
  try:
    with tf.io.gfile.GFile(module_dir + ".descriptor.txt", "r") as f:
      for line in f.read().splitlines():
        name, sep, value = line.partition(": ")
        if sep:
          fields[name.strip()] = value.strip()
  except tf.errors.OpError:
    pass
  return fields


def list_entries(cache_root: Optional[str] = None) -> List[Entry]:
  """The module directories of a cache, sorted by handle then key.

  Args:
    cache_root: the cache directory (default: TFHUB_CACHE_DIR or its flag).

  Returns:
    One `Entry` per `<sha1>` directory; an empty list when the directory
    does not exist.
  """
  root = cache_root or config.cache_dir()
  try:
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(root)]
  except tf.errors.NotFoundError:
    return []
  entries = []
  for name in names:
    path = os.path.join(root, name)
    if not _KEY_RE.match(name) or not tf.io.gfile.isdir(path):
      continue
    fields = _descriptor_fields(path)
    entries.append(Entry(key=name, path=path, handle=fields.get("Module"),
                         complete=cache.is_complete(path),
                         size_bytes=paths.tree_size(path),
                         downloaded=fields.get("Download Time")))
  return sorted(entries, key=lambda e: (e.handle or "", e.key))


def prefetch(handle: str, cache_root: Optional[str] = None) -> str:
  """Downloads `handle` into the cache unless it is there; returns its path.

  Args:
    handle: a URL handle (a local path is not cached and is refused).
    cache_root: the cache directory (default: TFHUB_CACHE_DIR or its flag).

  Returns:
    The module's cache directory.

  Raises:
    ValueError: `handle` is a local path: there is nothing to cache.
    hub_tf1.resolving errors: as `resolve` raises them (download failures,
      unsupported handles, cache not writable).
  """
  # pylint: disable=g-import-not-at-top
  from hub_tf1.resolving import resolver
  # pylint: enable=g-import-not-at-top
  if "://" not in handle or handle.startswith("file://"):
    raise ValueError("%s is a local path, which is used in place and never "
                     "cached; nothing to prefetch." % handle)
  settings = {config.CACHE_DIR_ENV: cache_root or config.cache_dir()}
  if config.progress_setting() is None:
    settings[config.DOWNLOAD_PROGRESS_ENV] = "1"  # A bar, even when piped.
  with _environment(settings):
    return resolver.resolve(handle)


@contextlib.contextmanager
def _environment(settings: Dict[str, str]) -> Iterator[None]:
  """Sets environment variables for the duration of the block."""
  saved = {name: os.environ.get(name) for name in settings}
  os.environ.update(settings)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


def remove(handle_or_key: str, cache_root: Optional[str] = None) -> str:
  """Deletes one cache entry (module, descriptor, leftovers).

  Args:
    handle_or_key: the handle as it was used, or the entry's sha1 key.
    cache_root: the cache directory (default: TFHUB_CACHE_DIR or its flag).

  Returns:
    The path of the removed module directory.

  Raises:
    CacheEntryNotFoundError: there is no such entry.
    CacheNotWritableError: the cache directory may not be written.
  """
  root = cache_root or config.cache_dir()
  key = (handle_or_key if _KEY_RE.match(handle_or_key)
         else cache.cache_key(handle_or_key))
  module_dir = os.path.join(root, key)
  if not tf.io.gfile.exists(module_dir):
    raise errors.CacheEntryNotFoundError(handle_or_key, root, module_dir)
  lock = lock_lib.DownloadLock(module_dir, handle_or_key)
  try:
    lock.acquire(done=lambda: False)
  except (PermissionError, tf.errors.PermissionDeniedError) as e:
    raise errors.CacheNotWritableError(handle_or_key, root, str(e)) from e
  try:
    aside = "%s.%s.removed" % (module_dir, uuid.uuid4().hex)
    if tf.io.gfile.exists(module_dir):
      tf.io.gfile.rename(module_dir, aside, overwrite=False)
      fileio.remove_tree(aside)
    fileio.remove_tree(module_dir + ".descriptor.txt")
  finally:
    lock.release()
  return module_dir
