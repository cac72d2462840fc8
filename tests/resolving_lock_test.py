"""The download lock on its own: exclusivity, heartbeat, loss, takeover."""

# The tests drive the lock's internals directly.
# pylint: disable=protected-access

import os
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import tensorflow as tf

from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import lock as lock_lib

# Fast heartbeats (every 0.1 s), for the tests that wait for one.  No test
# relies on a lock going stale by the clock: where a waiter polls a live
# lock, `_NEVER_STALE` keeps a descheduled heartbeat thread (a loaded
# machine) from making it look dead.
_FAST = config.LockSettings(stale_sec=0.6, poll_sec=0.02)
_NEVER_STALE = config.LockSettings(stale_sec=3600, poll_sec=0.02)
_WAIT_LIMIT_SEC = 60


def dead_pid():
  """The pid of a process of ours that has exited (and been reaped)."""
  child = subprocess.Popen([sys.executable, "-c", "pass"])
  child.wait()
  return child.pid


def wait_for(predicate, what):
  deadline = time.monotonic() + _WAIT_LIMIT_SEC
  while not predicate():
    if time.monotonic() > deadline:
      raise AssertionError("gave up waiting for " + what)
    time.sleep(0.01)


class ParseTest(absltest.TestCase):

  def test_parses_tensorflow_hub_content(self):
    info = lock_lib.parse_lock("host.example.com.1234.%s" % ("a" * 32))
    self.assertEqual(info.host, "host.example.com")
    self.assertEqual(info.pid, 1234)
    self.assertEqual(info.task_uid, "a" * 32)
    self.assertFalse(info.ours_format)

  def test_our_content_ends_like_tensorflow_hubs(self):
    root = self.create_tempdir().full_path
    lock = lock_lib.DownloadLock(os.path.join(root, "k"), "h\nx", _FAST)
    content = lock._content
    # tensorflow_hub finds the holder's temp dir from the last "." field.
    self.assertEqual(content.split(".")[-1], lock.task_uid)
    self.assertEqual(lock.temp_dir,
                     os.path.join(root, "k.%s.tmp" % lock.task_uid))
    info = lock_lib.parse_lock(content)
    self.assertTrue(info.ours_format)
    self.assertEqual(info.pid, os.getpid())
    self.assertEqual(info.heartbeat, 0)
    self.assertEqual(info.task_uid, lock.task_uid)

  def test_garbage_content(self):
    info = lock_lib.parse_lock("")
    self.assertEqual(info.pid, -1)
    self.assertFalse(info.ours_format)

  def test_pid_alive(self):
    self.assertTrue(lock_lib.pid_alive(os.getpid()))
    self.assertFalse(lock_lib.pid_alive(-5))
    pid = dead_pid()
    self.assertFalse(lock_lib.pid_alive(pid))


class LockTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.module_dir = os.path.join(self.root, "key")
    self.locks = []

  def tearDown(self):
    for lock in self.locks:
      lock.release()
    super().tearDown()

  def new_lock(self, module_dir=None, settings=_FAST):
    lock = lock_lib.DownloadLock(module_dir or self.module_dir, "handle",
                                 settings)
    self.locks.append(lock)
    return lock

  def test_create_is_exclusive(self):
    a, b = self.new_lock(), self.new_lock()
    self.assertTrue(a._try_create())
    self.assertFalse(b._try_create())
    self.assertEqual(a.read(), a._content)
    self.assertEqual(os.listdir(self.root), ["key.lock"])

  def test_gfile_code_path_for_non_local_file_systems(self):
    # The path used for gs:// and other non-local caches (temp file, then
    # rename without overwrite), run here through tf.io.gfile on local disk.
    with mock.patch.object(lock_lib.paths, "local_path", lambda p: None):
      a, b = self.new_lock(), self.new_lock()
      self.assertTrue(a.acquire(done=lambda: False))
      self.assertFalse(b._try_create())
      first = a.read()
      wait_for(lambda: a.read() != first, "a heartbeat")
      self.assertTrue(a.still_ours())
      a.release()
      self.assertFalse(tf.io.gfile.exists(a.path))
      self.assertTrue(b._try_create())
      stale = b.read()
      self.new_lock()._take_over(stale, lock_lib.parse_lock(stale), "test")
      self.assertEqual(os.listdir(self.root), [])

  def test_heartbeat_changes_content_and_release_removes(self):
    lock = self.new_lock()
    self.assertTrue(lock.acquire(done=lambda: False))
    first = lock.read()
    wait_for(lambda: lock.read() != first, "a heartbeat")
    self.assertGreater(lock_lib.parse_lock(lock.read()).heartbeat, 0)
    self.assertTrue(lock.still_ours())
    lock.release()
    self.assertFalse(os.path.exists(lock.path))

  def test_waiter_returns_when_done(self):
    owner = self.new_lock()
    self.assertTrue(owner.acquire(done=lambda: False))
    done_flag = []
    waiter = self.new_lock(settings=_NEVER_STALE)
    rounds = []

    def done():
      rounds.append(1)
      if len(rounds) == 3:
        done_flag.append(True)
      return bool(done_flag)
    self.assertFalse(waiter.acquire(done=done))
    self.assertEqual(len(rounds), 3)
    self.assertTrue(owner.still_ours())

  def test_waiter_gets_the_lock_after_release(self):
    owner = self.new_lock()
    self.assertTrue(owner.acquire(done=lambda: False))
    waiter = self.new_lock(settings=_NEVER_STALE)
    polls = []

    def done():
      polls.append(1)
      if len(polls) == 2:
        owner.release()
      return False
    self.assertTrue(waiter.acquire(done=done))
    self.assertTrue(waiter.still_ours())

  def test_loss_is_detected(self):
    lock = self.new_lock()
    self.assertTrue(lock.acquire(done=lambda: False))
    with open(lock.path, "w") as f:
      f.write("someone.else.1.%s" % ("b" * 32))
    wait_for(lambda: lock.lost, "the heartbeat to notice")
    with self.assertRaises(errors.LockLostError):
      lock.check()
    lock.release()
    # Not ours any more: release must leave the other owner's lock alone.
    with open(lock.path) as f:
      self.assertIn("someone.else", f.read())

  def test_takeover_spares_a_fresh_lock(self):
    fresh = self.new_lock()
    self.assertTrue(fresh._try_create())
    other = self.new_lock()
    stale = "dead.host.1.%s" % ("c" * 32)
    # The lock we judged stale was replaced by `fresh` meanwhile.
    other._take_over(stale, lock_lib.parse_lock(stale), "test")
    self.assertEqual(fresh.read(), fresh._content)
    self.assertEqual(sorted(os.listdir(self.root)), ["key.lock"])

  def test_takeover_removes_stale_lock_and_its_temp_dir(self):
    uid = "d" * 32
    stale = "dead.host.1.%s" % uid
    with open(self.module_dir + ".lock", "w") as f:
      f.write(stale)
    os.makedirs(self.module_dir + ".%s.tmp/variables" % uid)
    lock = self.new_lock()
    lock._take_over(stale, lock_lib.parse_lock(stale), "test")
    self.assertEqual(os.listdir(self.root), [])

  def test_dead_owner_on_this_machine_is_replaced_at_once(self):
    pid = dead_pid()
    dead = self.new_lock()
    dead._pid = pid
    dead._content = dead._render()
    self.assertTrue(dead._try_create())
    # A long stale period: freed at once only if the dead pid is noticed
    # (otherwise the log below says "no heartbeat" and the test fails).
    waiter = lock_lib.DownloadLock(self.module_dir, "handle",
                                   config.LockSettings(stale_sec=100,
                                                       poll_sec=0.02))
    self.locks.append(waiter)
    with self.assertLogs("absl", "WARNING") as logs:
      self.assertTrue(waiter.acquire(done=lambda: False))
    self.assertIn("process %d is gone" % pid, "\n".join(logs.output))


if __name__ == "__main__":
  absltest.main()
