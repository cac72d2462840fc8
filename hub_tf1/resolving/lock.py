"""The per-module download lock: exclusive create, heartbeat, stale takeover.

Protocol (see docs in `cache.py` for how it is used):

* The lock is the file `<cache>/<key>.lock`.  It is created exclusively: on a
  local disk by writing a temp file and hard-linking it to the lock name
  (`link` fails if the name exists; falls back to `O_CREAT|O_EXCL`), on other
  TensorFlow file systems by a temp file and `rename(overwrite=False)`
  (`fileio.atomic_write_bytes(..., overwrite=False)`; these file systems have
  no exclusive create, but a reader never sees a partial lock).
* Its content names the owner (host, pid, a machine id telling pid namespaces
  apart, a fresh uuid) and a heartbeat counter; the last line is
  `<host>.<pid>.<uuid>` as tensorflow_hub writes it, so the original's waiter
  also finds our temp dir `<key>.<uuid>.tmp` and sees the content change.
* The owner rewrites the lock with the next heartbeat count every few seconds
  from a background thread.  If the content is no longer its own, it has lost
  the lock (someone judged it dead) and `check()` raises `LockLostError`.
* A waiter polls.  It takes the lock over when the owner's process is gone
  (same machine) or the content did not change for `stale_sec` seconds of the
  waiter's own clock (no clock comparison across hosts; for a lock written by
  tensorflow_hub, which has no heartbeat, its temp dir must not grow either).
  Taking over moves the lock aside atomically, checks it moved the stale
  content and not a fresh lock, and deletes the dead owner's temp dir.

The lock only prevents duplicate downloads.  Correctness does not depend on
it: a module only becomes visible by an atomic rename of a verified directory.
"""

import dataclasses
import os
import socket
import threading
import time
import uuid
from typing import Callable, Optional

from absl import logging
import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import paths

_MAGIC = "hub_tf1 download lock v1"
_LOG_WAIT_EVERY_SEC = 30.0


def _machine_id() -> str:
  """Boot id plus pid namespace: equal only where pids are comparable."""
  parts = []
  try:
    with open("/proc/sys/kernel/random/boot_id", "r") as f:
      parts.append(f.read().strip())
    parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
  except OSError:
    return ""
  return "/".join(parts)


_MACHINE_ID = _machine_id()


def pid_alive(pid: int) -> bool:
  """Whether `pid` is a running (not zombie) process on this machine."""
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  except OSError:
    return True
  try:
    with open("/proc/%d/stat" % pid, "r") as f:
      state = f.read().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")
  except (OSError, IndexError):
    return True


@dataclasses.dataclass(frozen=True)
class LockInfo:
  """What a lock file says about its owner."""
  content: str
  host: str = ""
  pid: int = -1
  machine: str = ""
  task_uid: str = ""
  heartbeat: Optional[int] = None

  @property
  def ours_format(self) -> bool:
    return self.heartbeat is not None

  def describe(self) -> str:
    if self.host:
      return "%s (pid %d)" % (self.host, self.pid)
    return repr(self.content[:80])


def parse_lock(content: str) -> LockInfo:
  """Parses our format and the original's `<host>.<pid>.<uuid>`."""
  lines = [l for l in content.strip().splitlines() if l.strip()]
  if not lines:
    return LockInfo(content=content)
  last = lines[-1].strip()
  host, pid, task_uid = "", -1, ""
  pieces = last.rsplit(".", 2)
  if len(pieces) == 3 and pieces[1].isdigit():
    host, pid, task_uid = pieces[0], int(pieces[1]), pieces[2]
  fields = {}
  for line in lines[:-1]:
    key, sep, value = line.partition(":")
    if sep:
      fields[key.strip()] = value.strip()
  heartbeat = None
  if lines[0].strip() == _MAGIC:
    try:
      heartbeat = int(fields.get("heartbeat", "0").split()[0])
    except (ValueError, IndexError):
      heartbeat = 0
  return LockInfo(content=content, host=host, pid=pid,
                  machine=fields.get("machine", ""), task_uid=task_uid,
                  heartbeat=heartbeat)


def temp_dir_for(module_dir: str, task_uid: str) -> str:
  """The download dir of the lock holder `task_uid` (original's naming)."""
  return "%s.%s.tmp" % (module_dir, task_uid)


class DownloadLock:
  """One attempt to own `<module_dir>.lock`."""

  def __init__(self, module_dir: str, handle: str,
               settings: Optional[config.LockSettings] = None):
    self.module_dir = module_dir
    self.path = module_dir + ".lock"
    self.handle = handle
    self.settings = settings or config.LockSettings.from_env()
    self.task_uid = uuid.uuid4().hex
    self.temp_dir = temp_dir_for(module_dir, self.task_uid)
    self._host = socket.gethostname()
    self._pid = os.getpid()
    self._beat = 0
    self._content = self._render()
    self._held = False
    self._lost = threading.Event()
    self._stop = threading.Event()
    self._thread = None  # type: Optional[threading.Thread]
    self._io_lock = threading.Lock()

  # -- content -------------------------------------------------------------

  def _render(self) -> str:
    return "\n".join([
        _MAGIC,
        "handle: %s" % self.handle.replace("\n", " "),
        "host: %s" % self._host,
        "pid: %d" % self._pid,
        "machine: %s" % _MACHINE_ID,
        "heartbeat: %d %.3f" % (self._beat, time.time()),
        "%s.%d.%s" % (self._host, self._pid, self.task_uid),
    ])

  # -- creation ------------------------------------------------------------

  def _try_create(self) -> bool:
    """Creates the lock file exclusively with our content."""
    data = self._content.encode("utf-8")
    local = paths.local_path(self.path)
    if local is None:
      try:
        fileio.atomic_write_bytes(self.path, data, overwrite=False)
        return True
      except (tf.errors.AlreadyExistsError, tf.errors.FailedPreconditionError):
        return False
    tmp = fileio.temp_sibling(local)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
      os.write(fd, data)
    finally:
      os.close(fd)
    try:
      os.link(tmp, local)
      return True
    except FileExistsError:
      return False
    except OSError:
      # No hard links on this file system: exclusive create instead (a reader
      # may briefly see an empty lock; that counts as "not changing" only
      # after a whole stale period).
      return self._create_excl(local, data)
    finally:
      try:
        os.remove(tmp)
      except FileNotFoundError:
        pass

  @staticmethod
  def _create_excl(local: str, data: bytes) -> bool:
    try:
      fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    try:
      os.write(fd, data)
    finally:
      os.close(fd)
    return True

  def _rewrite(self) -> None:
    """Replaces the lock with our (new) content; only called while held."""
    data = self._content.encode("utf-8")
    local = paths.local_path(self.path)
    if local is None:
      fileio.atomic_write_bytes(self.path, data, overwrite=True)
      return
    tmp = fileio.temp_sibling(local)
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, local)

  def read(self) -> Optional[str]:
    return paths.read_text(self.path)

  # -- acquiring -----------------------------------------------------------

  def acquire(self, done: Callable[[], bool]) -> bool:
    """Takes the lock, waiting for (or taking over from) another owner.

    Args:
      done: tells whether the module is already in place; checked while
        waiting, so a waiter returns as soon as the owner finished.

    Returns:
      True when we own the lock (the heartbeat runs), False when `done()`
      became true first.
    """
    observed = None
    changed_at = time.monotonic()
    foreign_size = None
    last_log = None
    while True:
      if self._try_create():
        self._held = True
        self._start_heartbeat()
        return True
      content = self.read()
      if content is None:
        # Released between our create and read: try again (after a pause, in
        # case creating fails for a reason that reading cannot see).
        time.sleep(min(0.01, self.settings.poll_sec))
        continue
      if done():
        return False
      now = time.monotonic()
      if content != observed:
        observed, changed_at, foreign_size = content, now, None
      info = parse_lock(content)
      reason = None
      if (info.machine and info.machine == _MACHINE_ID and
          info.host == self._host and not pid_alive(info.pid)):
        reason = "its owner process %d is gone" % info.pid
      elif now - changed_at >= self.settings.stale_sec:
        if info.ours_format:
          reason = "no heartbeat for %.1f s" % (now - changed_at)
        else:
          # A tensorflow_hub lock has no heartbeat: also require that the
          # owner's temp dir stopped growing.
          size = paths.tree_size(temp_dir_for(self.module_dir, info.task_uid))
          if foreign_size is not None and size == foreign_size:
            reason = "no progress for %.1f s" % (now - changed_at)
          else:
            foreign_size, changed_at = size, now
      if reason:
        self._take_over(content, info, reason)
        observed = None
        continue
      if last_log is None or now - last_log >= _LOG_WAIT_EVERY_SEC:
        last_log = now
        logging.info("Module '%s' already being downloaded by %s. Waiting.",
                     self.handle, info.describe())
      time.sleep(self.settings.poll_sec)

  def _take_over(self, stale: str, info: LockInfo, reason: str) -> None:
    """Removes the stale lock `stale` (only that one) and its temp dir."""
    local = paths.local_path(self.path)
    if local is None:
      if self.read() != stale:
        return
      fileio.remove_tree(self.path)
    else:
      aside = fileio.temp_sibling(local, tag="stale")
      try:
        os.rename(local, aside)
      except FileNotFoundError:
        return  # Somebody else removed it.
      try:
        with open(aside, "rb") as f:
          moved = f.read().decode("utf-8", "replace")
        if moved != stale:
          # We moved a fresh lock that replaced the stale one: put it back
          # (exclusively; if yet another lock appeared, that one wins and the
          # owner of the moved lock sees the loss at its next heartbeat).
          try:
            os.link(aside, local)
          except OSError:
            pass
          return
      finally:
        try:
          os.remove(aside)
        except FileNotFoundError:
          pass
    logging.warning("Taking over the download lock %s of %s: %s.", self.path,
                    info.describe(), reason)
    if info.task_uid:
      fileio.remove_tree(temp_dir_for(self.module_dir, info.task_uid))

  # -- holding -------------------------------------------------------------

  def _start_heartbeat(self) -> None:
    self._thread = threading.Thread(target=self._heartbeat_loop,
                                    name="hub_tf1-lock-heartbeat", daemon=True)
    self._thread.start()

  def _heartbeat_loop(self) -> None:
    while not self._stop.wait(self.settings.heartbeat_sec):
      with self._io_lock:
        if self._stop.is_set():
          return
        try:
          if self.read() != self._content:
            self._lost.set()
            logging.warning("Lost the download lock %s for %s.", self.path,
                            self.handle)
            return
          self._beat += 1
          self._content = self._render()
          self._rewrite()
        except Exception as e:  # pylint: disable=broad-except
          # A transient file-system error: the next beat tries again; if they
          # keep failing, waiters will (rightly) consider us dead.
          logging.warning("Could not refresh the lock %s: %s", self.path, e)

  @property
  def lost(self) -> bool:
    return self._lost.is_set()

  def check(self) -> None:
    """Raises LockLostError if another process took the lock from us."""
    if self._lost.is_set():
      raise errors.LockLostError(
          "Another process took over the download lock %s of %s." %
          (self.path, self.handle))

  def still_ours(self) -> bool:
    with self._io_lock:
      return self.read() == self._content

  def release(self) -> None:
    """Stops the heartbeat and deletes the lock if it is still ours."""
    if not self._held:
      return
    self._held = False
    with self._io_lock:
      self._stop.set()
    if self._thread is not None:
      self._thread.join()
    if self.read() == self._content:
      fileio.remove_tree(self.path)
