"""Download progress: a live line on a terminal, periodic log lines elsewhere.

Interactive mode (TFHUB_DOWNLOAD_PROGRESS set to a true value, or stdout is a
terminal) rewrites one line on stdout with bytes, total size when the server
sent one, and speed.  Otherwise a log line is written every 15 seconds, so long
downloads in batch jobs still show they are alive.
"""

import sys
import time
from typing import Callable, Optional, TextIO

from absl import logging

from hub_tf1.resolving import config

_LOG_EVERY_SEC = 15.0
_REDRAW_EVERY_SEC = 0.1


def readable_size(num_bytes: Optional[int]) -> str:
  """`123B`, `1.50kB`, `12.34MB`, `1.00GB` (the original's format)."""
  if num_bytes is None:
    return "unknown size"
  for limit, unit in ((1 << 10, ""), (1 << 20, "k"), (1 << 30, "M")):
    if num_bytes < limit:
      if not unit:
        return "%dB" % num_bytes
      return "%.2f%sB" % (num_bytes / float(limit >> 10), unit)
  return "%.2fGB" % (num_bytes / float(1 << 30))


def interactive_default(stream: TextIO) -> bool:
  setting = config.progress_setting()
  if setting is not None:
    return setting
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


class Progress:
  """Tracks one download; call `update(n)` per chunk and `done()` at the end."""

  def __init__(self, url: str, total_bytes: Optional[int] = None,
               interactive: Optional[bool] = None,
               stream: Optional[TextIO] = None,
               clock: Callable[[], float] = time.monotonic):
    self._url = url
    self._total = total_bytes
    self._stream = stream or sys.stdout
    self._interactive = (interactive_default(self._stream)
                         if interactive is None else interactive)
    self._clock = clock
    self._start = clock()
    self._last_shown = self._start
    self._bytes = 0
    self._width = 0

  @property
  def bytes_done(self) -> int:
    return self._bytes

  def restart(self, total_bytes: Optional[int]) -> None:
    """Starts counting again (a retried download)."""
    self._total = total_bytes
    self._bytes = 0
    self._start = self._clock()

  def _message(self) -> str:
    elapsed = max(self._clock() - self._start, 1e-6)
    speed = readable_size(int(self._bytes / elapsed)) + "/s"
    if self._total:
      pct = 100.0 * self._bytes / self._total
      return "Downloading %s: %s of %s (%.0f%%), %s" % (
          self._url, readable_size(self._bytes), readable_size(self._total),
          pct, speed)
    return "Downloading %s: %s, %s" % (self._url, readable_size(self._bytes),
                                       speed)

  def _show(self, msg: str, final: bool = False) -> None:
    if self._interactive:
      self._width = max(self._width, len(msg))
      self._stream.write("\r" + msg.ljust(self._width))
      if final:
        self._stream.write("\n")
      self._stream.flush()
    else:
      logging.info(msg)

  def update(self, num_bytes: int) -> None:
    self._bytes += num_bytes
    now = self._clock()
    period = _REDRAW_EVERY_SEC if self._interactive else _LOG_EVERY_SEC
    if now - self._last_shown >= period:
      self._last_shown = now
      self._show(self._message())

  def done(self) -> None:
    self._show("Downloaded %s, Total size: %s" %
               (self._url, readable_size(self._bytes)), final=True)
