"""Read-only and cache-only (TFHUB_CACHE_ONLY) caches (issue 13, part 4).

Rules of this file: a real HTTP server on 127.0.0.1 counts TCP connections;
cache-only mode must accept none.  The read-only test loads the module in a
subprocess running as the unprivileged user `nobody` (root ignores mode bits)
and compares the cache's listing and mtimes before and after.
"""

import os
import shutil
import subprocess
import sys

from absl.testing import absltest
import tensorflow as tf

from hub_tf1 import errors as hub_errors
from hub_tf1 import resolving
from hub_tf1.resolving import config
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_TESTS_DIR)
_NNLM_TGZ = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules",
                         "text_embedding_nnlm.tar.gz")
_NOBODY = 65534

# Run as uid/gid nobody.  The interpreter may live under a root-only
# directory, so the child keeps CAP_DAC_READ_SEARCH (reads and directory
# search only; writes are checked against the mode bits as for any user).
_AS_NOBODY = ["setpriv", "--reuid=%d" % _NOBODY, "--regid=%d" % _NOBODY,
              "--clear-groups", "--inh-caps=+dac_read_search",
              "--ambient-caps=+dac_read_search"]

_CHILD = """
import sys
from hub_tf1 import resolving
try:
  open(sys.argv[2] + "/probe", "w")
  print("WRITABLE")
except OSError:
  print("DENIED")
try:
  print("RESOLVED " + resolving.resolve(sys.argv[1]))
except Exception as e:
  print("ERROR %s: %s" % (type(e).__name__, e))
"""


def _snapshot(root):
  """Relative path -> (mode, size, mtime_ns) of everything under root."""
  result = {}
  for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
      path = os.path.join(dirpath, name)
      st = os.lstat(path)
      result[os.path.relpath(path, root)] = (st.st_mode, st.st_size,
                                             st.st_mtime_ns)
  st = os.lstat(root)
  result["."] = (st.st_mode, st.st_size, st.st_mtime_ns)
  return result


def _chmod_tree(root, dir_mode, file_mode):
  for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames:
      os.chmod(os.path.join(dirpath, name), dir_mode)
    for name in filenames:
      os.chmod(os.path.join(dirpath, name), file_mode)
  os.chmod(root, dir_mode)


class CacheOnlyTest(ths.ResolvingTestCase):

  served_files = (_NNLM_TGZ,)

  def _handle(self):
    return self.server.url("/hub/text_embedding_nnlm")

  def test_miss_raises_naming_handle_and_dir_without_connecting(self):
    os.environ[config.CACHE_ONLY_ENV] = "1"
    handle = self._handle()
    with self.assertRaises(resolving.NotInCacheError) as cm:
      resolving.resolve(handle)
    self.assertIsInstance(cm.exception, hub_errors.Error)
    self.assertIsInstance(cm.exception, IOError)
    self.assertIn(handle, str(cm.exception))
    self.assertIn(self.cache_dir, str(cm.exception))
    self.assertEqual(self.server.connections, 0)
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_uncompressed_format_is_also_answered_from_the_cache(self):
    os.environ[config.CACHE_ONLY_ENV] = "true"
    os.environ[config.LOAD_FORMAT_ENV] = config.UNCOMPRESSED
    with self.assertRaises(resolving.NotInCacheError):
      resolving.resolve(self._handle())
    self.assertEqual(self.server.connections, 0)

  def test_prefetch_then_load_with_the_server_stopped(self):
    handle = self._handle()
    path = resolving.resolve(handle)
    self.assertEqual(self.server.connections, 1)
    self.server.stop()
    os.environ[config.CACHE_ONLY_ENV] = "1"
    before = _snapshot(self.cache_dir)
    self.assertEqual(resolving.resolve(handle), path)
    self.assertEqual(_snapshot(self.cache_dir), before)
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_NNLM_TGZ))
    self.server = ths.TestingHttpServer(self.served).start()  # for tearDown

  def test_off_words_download_and_bad_words_raise(self):
    os.environ[config.CACHE_ONLY_ENV] = "off"
    resolving.resolve(self._handle())
    self.assertEqual(self.server.connections, 1)
    os.environ[config.CACHE_ONLY_ENV] = "maybe"
    with self.assertRaisesRegex(ValueError, "TFHUB_CACHE_ONLY='maybe'"):
      resolving.resolve(self.server.url("/hub/not_cached"))


class ReadOnlyCacheTest(ths.ResolvingTestCase):

  served_files = (_NNLM_TGZ,)

  def setUp(self):
    super().setUp()
    if os.geteuid() != 0:
      self.skipTest("needs root to run the load as the user nobody")
    if shutil.which("setpriv") is None:
      self.skipTest("needs setpriv (util-linux) to drop to the user nobody")
    # Inside a user namespace without that uid (Bazel's linux-sandbox maps
    # only root), setresuid fails: the pytest run of this file covers it.
    probe = subprocess.run(_AS_NOBODY + ["true"], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
      self.skipTest("cannot switch to uid %d here (%s)" %
                    (_NOBODY, probe.stderr.strip()))
    # The temp dirs must be reachable by nobody.
    for d in (self.cache_dir, os.path.dirname(self.cache_dir)):
      os.chmod(d, os.stat(d).st_mode | 0o755)

  def _run_as_nobody(self, handle):
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT)
    env.pop("HOME", None)
    out = subprocess.run(
        _AS_NOBODY + [sys.executable, "-c", _CHILD, handle, self.cache_dir],
        env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=240, check=False)
    lines = out.stdout.decode("utf-8", "replace").splitlines()
    self.assertLen(lines, 2, msg=out.stderr.decode("utf-8", "replace")[-3000:])
    self.assertEqual(lines[0], "DENIED", msg="the write denial is not real")
    return lines[1]

  def test_hit_writes_nothing(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    path = resolving.resolve(handle)
    # Leftovers a hit must not touch either: the descriptor goes away.
    os.remove(path + ".descriptor.txt")
    _chmod_tree(self.cache_dir, 0o555, 0o444)
    self.addCleanup(_chmod_tree, self.cache_dir, 0o755, 0o644)
    before = _snapshot(self.cache_dir)
    connections = self.server.connections
    self.assertEqual(self._run_as_nobody(handle), "RESOLVED " + path)
    self.assertEqual(_snapshot(self.cache_dir), before)
    self.assertEqual(self.server.connections, connections)

  def test_miss_raises_permission_denied_naming_handle_and_dir(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    os.chmod(self.cache_dir, 0o555)
    self.addCleanup(os.chmod, self.cache_dir, 0o755)
    before = _snapshot(self.cache_dir)
    line = self._run_as_nobody(handle)
    self.assertTrue(line.startswith("ERROR CacheNotWritableError: "), line)
    self.assertIn(handle, line)
    self.assertIn(self.cache_dir, line)
    self.assertEqual(_snapshot(self.cache_dir), before)
    self.assertTrue(issubclass(resolving.CacheNotWritableError,
                               tf.errors.PermissionDeniedError))


if __name__ == "__main__":
  absltest.main()
