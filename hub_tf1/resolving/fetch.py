"""Fetches a module archive into a directory, with retries and progress.

Each attempt streams the archive straight into the extractor (no temporary
archive file); a failed attempt empties the directory and, when the failure
was transient, the next attempt starts after an exponential backoff.  The
directory holds a verified module when these functions return.
"""

import time
from typing import Callable, Optional

from absl import logging
import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import http_download
from hub_tf1.resolving import progress as progress_lib
from hub_tf1.resolving import tarball

TransientError = http_download.TransientError

# Errors of tf.io.gfile reads that a later attempt may not see.
_TRANSIENT_GFILE_ERRORS = (tf.errors.UnavailableError,
                           tf.errors.DeadlineExceededError,
                           tf.errors.AbortedError)


def _reset_dir(path: str) -> None:
  fileio.remove_tree(path)
  tf.io.gfile.makedirs(path)


def _with_retries(handle: str, url: str, dst_dir: str,
                  settings: config.DownloadSettings,
                  attempt: Callable[[progress_lib.Progress], None]) -> None:
  """Runs `attempt` until success, a permanent error or no attempts left."""
  progress = progress_lib.Progress(handle)
  last = None  # type: Optional[TransientError]
  for number in range(1, settings.attempts + 1):
    _reset_dir(dst_dir)
    try:
      attempt(progress)
      tarball.verify_module_dir(dst_dir, handle)
      progress.done()
      return
    except TransientError as e:
      last = e
      if number < settings.attempts:
        delay = settings.backoff_sec * (2 ** (number - 1))
        logging.warning(
            "Downloading %s failed (%s); attempt %d of %d, retrying in %.1f s.",
            handle, e.reason, number, settings.attempts, delay)
        time.sleep(delay)
  assert last is not None
  if last.status is not None and last.http_error is not None:
    raise errors.ModuleHttpError(
        handle, url, last.status, str(last.http_error.reason),
        last.http_error.headers, attempts=settings.attempts) from last
  raise errors.DownloadError(handle, url, last.reason,
                             attempts=settings.attempts) from last


def _counting(progress: progress_lib.Progress,
              check: Callable[[], None]) -> Callable[[int], None]:
  def on_bytes(n: int) -> None:
    progress.update(n)
    check()
  return on_bytes


def fetch_http(handle: str, url: str, dst_dir: str,
               settings: config.DownloadSettings,
               check: Callable[[], None]) -> None:
  """Downloads the tarball at `url` and extracts it into `dst_dir`.

  Args:
    handle: the module handle (for messages).
    url: what to request (the handle plus the format query).
    dst_dir: an existing directory; emptied first.
    settings: timeouts, attempts, size limit.
    check: called for every chunk; raises to abort (a lost lock).
  """
  def attempt(progress: progress_lib.Progress) -> None:
    response, total = http_download.open_http(handle, url,
                                              settings.timeout_sec)
    with response:
      progress.restart(total)
      reader = http_download.BodyReader(response, _counting(progress, check),
                                        settings.timeout_sec)
      tarball.extract(reader, dst_dir, handle, settings.max_module_bytes)
  _with_retries(handle, url, dst_dir, settings, attempt)


class _GFileReader:
  """A gfile reader that reports transient storage errors for a retry."""

  def __init__(self, f, on_bytes: Callable[[int], None]):
    self._f = f
    self._on_bytes = on_bytes

  def read(self, size: int = -1) -> bytes:
    try:
      data = self._f.read(size)
    except _TRANSIENT_GFILE_ERRORS as e:
      raise TransientError("%s: %s" % (type(e).__name__, e.message)) from e
    if data:
      self._on_bytes(len(data))
    return data


def fetch_gfile(handle: str, dst_dir: str, settings: config.DownloadSettings,
                check: Callable[[], None]) -> None:
  """Streams the tarball at the tf.io.gfile path `handle` into `dst_dir`."""
  def attempt(progress: progress_lib.Progress) -> None:
    try:
      total = tf.io.gfile.stat(handle).length
    except tf.errors.NotFoundError:
      raise IOError("%s does not exist." % handle) from None
    except _TRANSIENT_GFILE_ERRORS as e:
      raise TransientError("%s: %s" % (type(e).__name__, e.message)) from e
    progress.restart(total)
    with tf.io.gfile.GFile(handle, "rb") as f:
      reader = _GFileReader(f, _counting(progress, check))
      tarball.extract(reader, dst_dir, handle, settings.max_module_bytes)
  _with_retries(handle, handle, dst_dir, settings, attempt)
