"""Many processes, killed downloads and stale locks on one cache entry.

Real processes (sys.executable with PYTHONPATH at the repo root), a real HTTP
server on 127.0.0.1 that counts requests, a real cache directory.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from absl.testing import absltest

from hub_tf1 import resolving
from hub_tf1.resolving import config
from hub_tf1.resolving import lock as lock_lib
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_TESTS_DIR)
_REF = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules")
_NNLM_TGZ = os.path.join(_REF, "text_embedding_nnlm.tar.gz")
_NNLM_JSON = os.path.join(_REF, "compressed_text_embedding.json")
_NUM_PROCESSES = 8
_WAIT_LIMIT_SEC = 180  # Upper bound on polls, so a broken build cannot hang.

# The child process (see that file): waits for the go signal, resolves,
# reports what it got.
_CHILD = os.path.join(_TESTS_DIR, "resolving_child_lib.py")


def tree_digest(files):
  digest = hashlib.sha256()
  for rel in sorted(files):
    digest.update(rel.encode() + b"\0")
    digest.update(files[rel])
  return digest.hexdigest()




def wait_for(predicate, what):
  deadline = time.monotonic() + _WAIT_LIMIT_SEC
  while not predicate():
    if time.monotonic() > deadline:
      raise AssertionError("gave up waiting for " + what)
    time.sleep(0.02)


def core_available():
  try:
    import hub_tf1  # pylint: disable=g-import-not-at-top
    return hasattr(hub_tf1, "load_module_spec") and hasattr(hub_tf1, "Module")
  except ImportError:
    return False


class ConcurrencyTestBase(ths.ResolvingTestCase):

  env = {config.LOCK_POLL_ENV: "0.05",
         config.DOWNLOAD_PROGRESS_ENV: "0"}
  served_files = (_NNLM_TGZ,)

  def setUp(self):
    super().setUp()
    self.work = self.create_tempdir().full_path
    self.handle = self.server.url("/hub/text_embedding_nnlm")
    self.key = resolving.cache_key(self.handle)
    self.entry = os.path.join(self.cache_dir, self.key)
    self.children = []

  def tearDown(self):
    for p in self.children:
      if p.poll() is None:
        p.kill()
      p.wait()
      p.out.close()
      p.err.close()
    super().tearDown()

  def child_env(self):
    return dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")

  def start_child(self, index, load=False, pause=()):
    """Starts a child; `pause` = (stage, marker file) stops it at `stage`."""
    ready = os.path.join(self.work, "ready%d" % index)
    go = os.path.join(self.work, "go")
    # Output goes to files: a pipe nobody reads could fill up and block.
    out = open(os.path.join(self.work, "out%d" % index), "w+b")
    err = open(os.path.join(self.work, "err%d" % index), "w+b")
    p = subprocess.Popen(
        [sys.executable, _CHILD, self.handle, ready, go,
         "1" if load else "0"] + list(pause),
        env=self.child_env(), stdout=out, stderr=err)
    p.out, p.err = out, err
    self.children.append(p)
    return p, ready

  def finish_child(self, p):
    """Waits for `p`; returns (returncode, stdout, stderr) as text."""
    p.wait(timeout=_WAIT_LIMIT_SEC)
    texts = []
    for f in (p.out, p.err):
      f.seek(0)
      texts.append(f.read().decode("utf-8", "replace"))
      f.close()
    return p.returncode, texts[0], texts[1]

  def assert_single_complete_entry(self):
    listing = sorted(os.listdir(self.cache_dir))
    self.assertIn(self.key, listing)
    self.assertLessEqual(set(listing), {self.key, self.key + ".descriptor.txt"})
    self.assertEqual(ths.dir_files(self.entry), ths.tarball_files(_NNLM_TGZ))


class ManyProcessesTest(ConcurrencyTestBase):

  def test_processes_starting_together_download_once(self):
    load = core_available()
    # Slow enough that every process asks while the download is running.
    self.server.set_behavior("/hub/text_embedding_nnlm", ths.Behavior(
        throttle_bytes=500, throttle_delay=0.1))
    readies = [self.start_child(i, load=load)[1]
               for i in range(_NUM_PROCESSES)]
    wait_for(lambda: all(os.path.exists(r) for r in readies),
             "children to import hub_tf1")
    with open(os.path.join(self.work, "go"), "w"):
      pass
    results = []
    for p in self.children:
      code, stdout, stderr = self.finish_child(p)
      self.assertEqual(code, 0, stderr[-3000:])
      line = [l for l in stdout.splitlines() if l.startswith("RESULT ")][-1]
      results.append(json.loads(line[len("RESULT "):]))

    self.assertEqual(self.server.request_count(), 1, self.server.paths())
    # The server marks a request complete after its last write returns,
    # which can be just after the client has read every byte.
    wait_for(lambda: self.server.completed_count() >= 1,
             "the server to record the completed download")
    self.assertEqual(self.server.completed_count(), 1)
    self.assertEqual({r["path"] for r in results}, {self.entry})
    want_tree = tree_digest(ths.tarball_files(_NNLM_TGZ))
    self.assertEqual([r["tree"] for r in results],
                     [want_tree] * _NUM_PROCESSES)
    self.assert_single_complete_entry()
    if load:
      self.assertEqual([r["signatures"] for r in results],
                       [["default"]] * _NUM_PROCESSES)
      with open(_NNLM_JSON) as f:
        fixture = json.load(f)
      check = [c for c in fixture["checks"]
               if c["id"] == "resolve_compressed_query"][0]
      want = check["expected"]["outputs"][0]["output"]["values"]
      # Inputs 0 and 2 of the fixture's first call.
      want = [want[0], want[2]]
      for r in results:
        self.assertEqual(r["output"], results[0]["output"])
        for got_row, want_row in zip(r["output"], want):
          for g, w in zip(got_row, want_row):
            self.assertAlmostEqual(g, w, delta=1e-5 + 1e-5 * abs(w))


class KilledDownloadTest(ConcurrencyTestBase):

  def _kill(self, p):
    os.kill(p.pid, signal.SIGKILL)
    p.wait()

  def test_killed_mid_transfer_then_second_process_succeeds(self):
    self.server.set_behavior("/hub/text_embedding_nnlm", ths.Behavior(
        throttle_bytes=200, throttle_delay=0.2))
    p, _ = self.start_child(0)
    with open(os.path.join(self.work, "go"), "w"):
      pass
    wait_for(lambda: (self.server.requests and
                      self.server.requests[0].bytes_sent >= 1000) or
             p.poll() is not None,
             "the first process to be mid-transfer")
    if p.poll() is not None:
      self.fail("child exited early: %s" % self.finish_child(p)[2][-2000:])
    self._kill(p)
    leftovers = sorted(os.listdir(self.cache_dir))
    self.assertIn(self.key + ".lock", leftovers)
    self.assertTrue(any(n.endswith(".tmp") for n in leftovers), leftovers)
    self.assertNotIn(self.key, leftovers)  # Nothing half-done is visible.

    self.server.set_behavior("/hub/text_embedding_nnlm", ths.Behavior())
    # The default stale period (60 s) is not what frees the lock here: the
    # owner's death is seen at once (and logged as such).
    with self.assertLogs("absl", "WARNING") as logs:
      path = resolving.resolve(self.handle)
    self.assertEqual(path, self.entry)
    self.assertTrue(any("process %d is gone" % p.pid in l
                        for l in logs.output), logs.output)
    self.assertEqual(self.server.request_count(), 2)
    # The server marks a request complete after its last write returns,
    # which can be just after the client has read every byte.
    wait_for(lambda: self.server.completed_count() >= 1,
             "the server to record the completed download")
    self.assertEqual(self.server.completed_count(), 1)
    self.assert_single_complete_entry()

  def _kill_at(self, stage):
    marker = os.path.join(self.work, "paused-" + stage)
    p, _ = self.start_child(0, pause=(stage, marker))
    with open(os.path.join(self.work, "go"), "w"):
      pass
    wait_for(lambda: os.path.exists(marker) or p.poll() is not None,
             "the child to reach " + stage)
    if p.poll() is not None:
      self.fail("child exited early: %s" % self.finish_child(p)[2][-2000:])
    self._kill(p)
    # Whatever the moment, the entry is absent or complete.
    if os.path.exists(self.entry):
      self.assertTrue(resolving.is_complete(self.entry))
      self.assertEqual(ths.dir_files(self.entry), ths.tarball_files(_NNLM_TGZ))

  def test_killed_holding_the_lock_before_any_byte(self):
    self._kill_at("locked")
    self.assertFalse(os.path.exists(self.entry))
    self.assertEqual(resolving.resolve(self.handle), self.entry)
    self.assert_single_complete_entry()
    self.assertEqual(self.server.request_count(), 1)

  def test_killed_after_extraction_before_rename(self):
    self._kill_at("extracted")
    self.assertFalse(os.path.exists(self.entry))
    self.assertEqual(resolving.resolve(self.handle), self.entry)
    self.assert_single_complete_entry()
    self.assertEqual(self.server.request_count(), 2)

  def test_killed_after_rename(self):
    self._kill_at("installed")
    self.assertTrue(resolving.is_complete(self.entry))
    self.assertEqual(resolving.resolve(self.handle), self.entry)
    self.assertEqual(self.server.request_count(), 1)
    self.assertEqual(ths.dir_files(self.entry), ths.tarball_files(_NNLM_TGZ))


class StaleLockTest(ConcurrencyTestBase):

  def _write_lock(self, content):
    with open(self.entry + ".lock", "w") as f:
      f.write(content)

  def test_lock_without_heartbeat_from_another_machine_is_taken_over(self):
    os.environ[config.LOCK_STALE_ENV] = "0.5"
    uid = "ab" * 16
    self._write_lock("\n".join([
        "hub_tf1 download lock v1", "host: elsewhere", "pid: 4242",
        "machine: another-machine/1", "heartbeat: 7 0.0",
        "elsewhere.4242.%s" % uid]))
    partial = os.path.join(self.cache_dir, "%s.%s.tmp" % (self.key, uid))
    os.makedirs(os.path.join(partial, "variables"))
    with self.assertLogs("absl", "WARNING") as logs:
      self.assertEqual(resolving.resolve(self.handle), self.entry)
    self.assertTrue(any("no heartbeat" in l for l in logs.output),
                    logs.output)
    self.assert_single_complete_entry()

  def test_tensorflow_hub_lock_without_progress_is_taken_over(self):
    os.environ[config.LOCK_STALE_ENV] = "0.3"
    uid = "cd" * 16
    self._write_lock("somehost.example.com.977.%s" % uid)
    partial = os.path.join(self.cache_dir, "%s.%s.tmp" % (self.key, uid))
    os.makedirs(partial)
    with open(os.path.join(partial, "saved_model.pb"), "wb") as f:
      f.write(b"partial")
    with self.assertLogs("absl", "WARNING") as logs:
      self.assertEqual(resolving.resolve(self.handle), self.entry)
    self.assertTrue(any("no progress" in l for l in logs.output), logs.output)
    self.assert_single_complete_entry()

  def test_live_owner_with_heartbeat_is_not_robbed(self):
    # The waiter waits through two whole stale periods while the owner's
    # download is held back: only the heartbeat keeps it from taking over.
    # The stale period is generous (a beat every 0.5 s), so a loaded machine
    # that delays a few beats does not make a live owner look dead; the
    # download is released by the test, not by a race against the clock.
    stale_sec = 3.0
    os.environ[config.LOCK_STALE_ENV] = str(stale_sec)
    held_back = ths.Behavior(throttle_bytes=100, throttle_delay=0.25)
    self.server.set_behavior("/hub/text_embedding_nnlm", held_back)
    p, _ = self.start_child(0)
    with open(os.path.join(self.work, "go"), "w"):
      pass
    wait_for(lambda: self.server.request_count() >= 1 or p.poll() is not None,
             "the owner to start downloading")
    if p.poll() is not None:
      self.fail("owner exited early: %s" % self.finish_child(p)[2][-2000:])
    with open(self.entry + ".lock") as f:
      lock_before = lock_lib.parse_lock(f.read())
    self.assertEqual(lock_before.pid, p.pid)
    outcome = {}

    def wait_as_second_process():
      try:
        outcome["path"] = resolving.resolve(self.handle)
      except Exception as e:  # pylint: disable=broad-except
        outcome["error"] = e
    waiter = threading.Thread(target=wait_as_second_process)
    with self.assertNoLogs("absl", "WARNING"):
      started = time.monotonic()
      waiter.start()
      wait_for(lambda: (time.monotonic() - started >= 2 * stale_sec or
                        not waiter.is_alive()),
               "two stale periods of waiting")
      held_back.throttle_delay = 0.0  # The server reads it for every chunk.
      waiter.join(_WAIT_LIMIT_SEC)
    self.assertFalse(waiter.is_alive())
    self.assertNotIn("error", outcome)
    self.assertEqual(outcome["path"], self.entry)
    code, _, stderr = self.finish_child(p)
    self.assertEqual(code, 0, stderr[-2000:])
    self.assertEqual(self.server.request_count(), 1)
    self.assert_single_complete_entry()

  def test_lost_lock_is_noticed_and_download_restarted(self):
    os.environ[config.LOCK_STALE_ENV] = "0.5"
    handle = "some-handle"
    lock_path = os.path.join(self.cache_dir,
                             resolving.cache_key(handle)) + ".lock"
    calls = []

    def fetch(dst_dir, check):
      calls.append(dst_dir)
      if len(calls) == 1:
        # Another process takes the lock (as if we had looked dead) ...
        with open(lock_path, "w") as f:
          f.write("\n".join(["hub_tf1 download lock v1", "machine: m2",
                             "heartbeat: 1 0", "thief.1.%s" % ("ef" * 16)]))
        # ... and our files vanish under us.
        raise IOError("simulated: temp dir deleted by the new owner")
      check()
      for name in ("tfhub_module.pb", "saved_model.pb"):
        with open(os.path.join(dst_dir, name), "wb") as f:
          f.write(b"\x08\x03")

    # The thief never heartbeats, so after 0.5 s we take the lock back.
    path = resolving.get_or_download(handle, fetch)
    self.assertEqual(len(calls), 2)
    self.assertNotEqual(calls[0], calls[1])
    self.assertTrue(resolving.is_complete(path))
    self.assertEqual(sorted(os.listdir(self.cache_dir)), sorted([
        os.path.basename(path), os.path.basename(path) + ".descriptor.txt"]))


if __name__ == "__main__":
  absltest.main()
