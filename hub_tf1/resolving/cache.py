"""The module cache: one directory per handle, filled once, atomically.

Layout (compatible with tensorflow_hub 0.15, so its caches are reused):

  <cache>/<sha1(handle)>/                 the module (complete, verified)
  <cache>/<sha1(handle)>.descriptor.txt   who downloaded it when (informational)
  <cache>/<sha1(handle)>.lock             download lock (see lock.py)
  <cache>/<sha1(handle)>.<uuid>.tmp/      the lock holder's download dir

An entry counts as present only if it holds `tfhub_module.pb` and
`saved_model.pb`.  Ours always do, because a module only gets its name by the
rename of a fully extracted and verified directory.  Anything else under the
name (an empty or partial directory left by older versions) is replaced under
the lock, but only once a good download is ready, so a failed download leaves
the cache exactly as it was.

A hit only reads (two stats): a cache prepared by an admin on a read-only
share works.  A miss in a directory we cannot write raises
`CacheNotWritableError`; in cache-only mode (TFHUB_CACHE_ONLY) a miss raises
`NotInCacheError` before anything is written or fetched.
"""

import datetime
import errno
import hashlib
import os
import socket
import time
from typing import Callable, Optional

from absl import logging
import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import lock as lock_lib
from hub_tf1.resolving import tarball

# Fetches the module into the given (existing) directory; the callable passed
# second raises LockLostError when our lock was taken over.
FetchFn = Callable[[str, Callable[[], None]], None]

_MAX_ROUNDS = 5

# Called as `stage_hook(stage)` when the owner of a download reaches "locked"
# (lock held, temp dir made), "extracted" (module verified in the temp dir)
# and "installed" (renamed into place).  None in normal use; a test sets it
# (in its own process, or in a child through a small runner script) to stop
# or kill a download at an exact point.
StageHook = Callable[[str], None]
stage_hook = None  # type: Optional[StageHook]


def cache_key(handle: str) -> str:
  """sha1 of the handle as given (no normalisation), like the original."""
  return hashlib.sha1(handle.encode("utf-8")).hexdigest()


def module_dir_for(handle: str, cache_root: Optional[str] = None) -> str:
  return os.path.join(cache_root or config.cache_dir(), cache_key(handle))


def is_complete(module_dir: str) -> bool:
  """Whether `module_dir` holds a whole module (cheap: two stats)."""
  return all(
      tf.io.gfile.exists(os.path.join(module_dir, name))
      for name in (tarball.MODULE_PB, tarball.SAVED_MODEL_PB))


def _reached(stage: str) -> None:
  hook = stage_hook
  if hook is not None:
    hook(stage)


def _sweep_leftovers(root: str, key: str, settings: config.LockSettings,
                     keep: str) -> None:
  """Deletes what dead owners left next to the entry (we hold the lock)."""
  try:
    names = tf.io.gfile.listdir(root)
  except tf.errors.NotFoundError:
    return
  now_ns = time.time_ns()
  for name in names:
    name = name.rstrip("/")
    if not name.startswith(key + ".") or name in (
        key + ".lock", key + ".descriptor.txt", keep):
      continue
    path = os.path.join(root, name)
    if name.startswith(key + ".lock."):
      # Another process's lock being created right now is not garbage.
      try:
        age = (now_ns - tf.io.gfile.stat(path).mtime_nsec) / 1e9
      except tf.errors.NotFoundError:
        continue
      if age < settings.stale_sec:
        continue
    logging.info("Deleting %s, left over by an interrupted download.", path)
    fileio.remove_tree(path)


def _install(tmp_dir: str, module_dir: str, task_uid: str) -> None:
  """Renames verified `tmp_dir` to `module_dir`; moves a partial one aside."""
  aside = None
  if tf.io.gfile.exists(module_dir):
    aside = "%s.%s.old" % (module_dir, task_uid)
    logging.warning("Replacing the incomplete cache entry %s.", module_dir)
    tf.io.gfile.rename(module_dir, aside, overwrite=False)
  try:
    tf.io.gfile.rename(tmp_dir, module_dir, overwrite=False)
  except tf.errors.OpError:
    if is_complete(module_dir):
      logging.warning("Module already exists in %s", module_dir)
      return
    if aside is not None and not tf.io.gfile.exists(module_dir):
      tf.io.gfile.rename(aside, module_dir, overwrite=False)
      aside = None
    raise
  finally:
    if aside is not None:
      fileio.remove_tree(aside)


def _write_descriptor(handle: str, module_dir: str) -> None:
  text = "Module: %s\nDownload Time: %s\nDownloader Hostname: %s (PID:%d)" % (
      handle, datetime.datetime.today(), socket.gethostname(), os.getpid())
  try:
    fileio.atomic_write_bytes(module_dir + ".descriptor.txt",
                              text.encode("utf-8"), overwrite=True)
  except tf.errors.OpError as e:
    logging.warning("Could not write %s.descriptor.txt: %s", module_dir, e)


def get_or_download(handle: str, fetch: FetchFn,
                    cache_root: Optional[str] = None,
                    lock_settings: Optional[config.LockSettings] = None) -> str:
  """Returns the cache directory of `handle`, downloading it once if needed.

  Many processes may call this at once for the same handle: one downloads
  (holding the lock), the others wait and return the same directory.

  Args:
    handle: the module handle (its sha1 names the entry).
    fetch: `fetch(dst_dir, check)` puts a verified module into `dst_dir`.
    cache_root: the cache directory; default `config.cache_dir()`.
    lock_settings: lock timing; default from the environment.

  Returns:
    The module directory `<cache_root>/<sha1(handle)>`.

  Raises:
    NotInCacheError: a miss in cache-only mode (nothing fetched).
    CacheNotWritableError: a miss in a cache directory we may not write.
    LockLostError: the lock was taken from us too many times.
  """
  root = cache_root or config.cache_dir()
  key = cache_key(handle)
  module_dir = os.path.join(root, key)
  if is_complete(module_dir):
    return module_dir
  if config.cache_only():
    raise errors.NotInCacheError(handle, root, module_dir)
  settings = lock_settings or config.LockSettings.from_env()
  for _ in range(_MAX_ROUNDS):
    lock = lock_lib.DownloadLock(module_dir, handle, settings)
    try:
      tf.io.gfile.makedirs(root)
      if not lock.acquire(done=lambda: is_complete(module_dir)):
        return module_dir
    except (PermissionError, tf.errors.PermissionDeniedError) as e:
      raise errors.CacheNotWritableError(handle, root, str(e)) from e
    except OSError as e:
      if e.errno != errno.EROFS:
        raise
      raise errors.CacheNotWritableError(handle, root, str(e)) from e
    try:
      if is_complete(module_dir):
        return module_dir
      _sweep_leftovers(root, key, settings,
                       keep=os.path.basename(lock.temp_dir))
      tf.io.gfile.makedirs(lock.temp_dir)
      _reached("locked")
      logging.info("Downloading TF-Hub Module '%s'.", handle)
      fetch(lock.temp_dir, lock.check)
      _reached("extracted")
      _install(lock.temp_dir, module_dir, lock.task_uid)
      _reached("installed")
      _write_descriptor(handle, module_dir)
      logging.info("Downloaded TF-Hub Module '%s'.", handle)
      return module_dir
    except Exception:  # pylint: disable=broad-except
      if lock.lost or not lock.still_ours():
        # We looked dead to another process, which now owns the download; our
        # failure is a consequence (files deleted under us).  Start over.
        if is_complete(module_dir):
          return module_dir
        logging.warning("Lost the download lock for %s; waiting for the new "
                        "owner.", handle)
        continue
      raise
    finally:
      fileio.remove_tree(lock.temp_dir)
      lock.release()
  raise errors.LockLostError(
      "Gave up on %s: the download lock was taken from us %d times." %
      (handle, _MAX_ROUNDS))
