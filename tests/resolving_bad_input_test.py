"""Bad input is refused with a clear error and leaves the cache as it was.

Every case downloads from a real HTTP server on 127.0.0.1 into a cache that
already holds another module; after the failure the cache listing must be
exactly what it was before (no entry, lock, temp dir or descriptor added).
"""

import gzip
import os
import shutil
import socket
import tarfile

from absl.testing import absltest

from hub_tf1 import resolving
from hub_tf1.resolving import config
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REF = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules")
_MODULE_DIR = os.path.join(_REF, "text_embedding_nnlm")

def cache_listing(root):
  """Every path under the cache, relative to it."""
  out = []
  for dirpath, dirs, files in os.walk(root):
    for name in dirs + files:
      out.append(os.path.relpath(os.path.join(dirpath, name), root))
  return sorted(out)


class BadInputTest(ths.ResolvingTestCase):

  env = {config.DOWNLOAD_BACKOFF_ENV: "0.01",
         config.DOWNLOAD_TIMEOUT_ENV: "10",
         config.DOWNLOAD_PROGRESS_ENV: "0"}
  served_files = tuple(
      os.path.join(_REF, name + ".tar.gz")
      for name in ("broken_truncated_tarball", "broken_path_traversal_tarball",
                   "broken_symlink_tarball", "text_embedding_nnlm"))

  def setUp(self):
    super().setUp()
    # Something already cached, which must survive every failure untouched.
    other = os.path.join(self.cache_dir, resolving.cache_key("other"))
    shutil.copytree(_MODULE_DIR, other)
    self.members = ths.module_members(_MODULE_DIR)
    self.before = cache_listing(self.cache_dir)

  def serve(self, name, data):
    with open(os.path.join(self.served, name + ".tar.gz"), "wb") as f:
      f.write(data)
    return self.server.url("/hub/" + name)

  def assert_refused(self, handle, exception, *fragments):
    """Resolving raises `exception` naming all fragments; cache unchanged."""
    with self.assertRaises(exception) as cm:
      resolving.resolve(handle)
    msg = str(cm.exception)
    for fragment in (handle,) + fragments:
      self.assertIn(fragment, msg)
    self.assertEqual(cache_listing(self.cache_dir), self.before)
    return cm.exception

  # -- archives that are not (complete) module tarballs ----------------------

  def test_truncated_fixture(self):
    e = self.assert_refused(self.server.url("/hub/broken_truncated_tarball"),
                            resolving.InvalidModuleArchiveError,
                            "does not appear to be a valid module")
    self.assertIsInstance(e, OSError)

  def test_first_200_bytes(self):
    # tensorflow_hub 0.15 cached this as a module holding only assets/.
    with open(os.path.join(self.served, "text_embedding_nnlm.tar.gz"),
              "rb") as f:
      data = f.read()
    self.assert_refused(self.serve("first200", data[:200]),
                        resolving.InvalidModuleArchiveError,
                        "does not appear to be a valid module")

  def test_truncated_at_member_boundary_inside_complete_gzip(self):
    for keep in (1, 3, len(self.members) - 1):
      with self.subTest(keep=keep):
        data = ths.member_boundary_truncation(self.members, keep)
        self.assert_refused(self.serve("boundary%d" % keep, data),
                            resolving.InvalidModuleArchiveError,
                            "end-of-archive marker")

  def test_uncompressed_tar_truncated_at_member_boundary(self):
    plain = ths.make_tar(self.members, compression="")
    with tarfile.open(fileobj=__import__("io").BytesIO(plain)) as tar:
      cut = tar.getmembers()[2].offset
    self.assert_refused(self.serve("plainboundary", plain[:cut]),
                        resolving.InvalidModuleArchiveError,
                        "end-of-archive marker")

  def test_gzip_trailer_missing(self):
    data = ths.make_tar(self.members)
    self.assert_refused(self.serve("notrailer", data[:-8]),
                        resolving.InvalidModuleArchiveError,
                        "gzip stream ends prematurely")

  def test_corrupt_gzip_data(self):
    data = bytearray(ths.make_tar(self.members))
    for i in range(200, 400):
      data[i] ^= 0x5A
    self.assert_refused(self.serve("corrupt", bytes(data)), IOError)

  def test_non_tar_body(self):
    self.assert_refused(
        self.serve("html", b"<html><body>Not a module</body></html>" * 20),
        resolving.InvalidModuleArchiveError, "not a tar archive")

  def test_empty_body(self):
    self.assert_refused(self.serve("empty", b""),
                        resolving.InvalidModuleArchiveError,
                        "does not appear to be a valid module")

  def test_gzipped_non_tar(self):
    self.assert_refused(self.serve("gzipped_text",
                                   gzip.compress(b"hello world\n" * 100)),
                        resolving.InvalidModuleArchiveError,
                        "not a tar archive")

  def test_archive_without_tfhub_module_pb(self):
    members = [m for m in self.members if m[0].name != "tfhub_module.pb"]
    self.assert_refused(self.serve("nomodulepb", ths.make_tar(members)),
                        resolving.InvalidModuleArchiveError, "tfhub_module.pb")

  def test_module_inside_a_subdirectory(self):
    members = []
    for info, data in self.members:
      info.name = "mymodule/" + info.name
      members.append((info, data))
    self.assert_refused(self.serve("nested", ths.make_tar(members)),
                        resolving.InvalidModuleArchiveError, "at its root")

  # -- HTTP and network failures ---------------------------------------------

  def test_404_is_not_retried(self):
    handle = self.server.url("/hub/no_such_module")
    e = self.assert_refused(handle, resolving.ModuleHttpError, "Not Found")
    self.assertEqual(e.code, 404)
    self.assertIn("HTTP Error 404", str(e))
    self.assertEqual(self.server.request_count(), 1)

  def test_500_is_retried_then_fails(self):
    os.environ[config.DOWNLOAD_ATTEMPTS_ENV] = "3"
    self.server.set_behavior("/hub/flaky", ths.Behavior(status=500))
    e = self.assert_refused(self.server.url("/hub/flaky"),
                            resolving.ModuleHttpError, "after 3 attempts")
    self.assertEqual(e.code, 500)
    self.assertEqual(self.server.request_count("/hub/flaky"), 3)

  def test_500_then_success(self):
    self.server.set_behavior("/hub/text_embedding_nnlm",
                             ths.Behavior(status=503, fail_times=2))
    path = resolving.resolve(self.server.url("/hub/text_embedding_nnlm"))
    self.assertTrue(os.path.exists(os.path.join(path, "tfhub_module.pb")))
    self.assertEqual(self.server.request_count(), 3)

  def test_connection_refused(self):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # Nothing listens on `port` now.
    os.environ[config.DOWNLOAD_ATTEMPTS_ENV] = "2"
    e = self.assert_refused("http://127.0.0.1:%d/hub/m" % port,
                            resolving.DownloadError, "Connection refused",
                            "after 2 attempts")
    self.assertIsInstance(e, OSError)

  def test_stalling_server_times_out(self):
    os.environ[config.DOWNLOAD_TIMEOUT_ENV] = "0.5"
    os.environ[config.DOWNLOAD_ATTEMPTS_ENV] = "2"
    self.server.set_behavior("/hub/text_embedding_nnlm",
                             ths.Behavior(stall_after=1000))
    self.assert_refused(self.server.url("/hub/text_embedding_nnlm"),
                        resolving.DownloadError, "timed out",
                        "after 2 attempts")
    self.assertEqual(self.server.request_count(), 2)

  def test_connection_cut_mid_body_then_success(self):
    self.server.set_behavior("/hub/text_embedding_nnlm",
                             ths.Behavior(cut_after=1500))
    handle = self.server.url("/hub/text_embedding_nnlm")
    os.environ[config.DOWNLOAD_ATTEMPTS_ENV] = "2"
    self.assert_refused(handle, resolving.DownloadError, "1500 of 4277 bytes")
    self.assertEqual(self.server.request_count(), 2)
    # The same failure once, then a good answer: the retry succeeds.
    self.server.set_behavior("/hub/text_embedding_nnlm", ths.Behavior())
    path = resolving.resolve(handle)
    self.assertTrue(os.path.exists(os.path.join(path, "saved_model.pb")))

  def test_connection_cut_without_content_length(self):
    self.server.set_behavior("/hub/text_embedding_nnlm",
                             ths.Behavior(cut_after=1500, send_length=False))
    os.environ[config.DOWNLOAD_ATTEMPTS_ENV] = "1"
    # Without a length the cut is only visible as a truncated archive.
    self.assert_refused(self.server.url("/hub/text_embedding_nnlm"),
                        resolving.InvalidModuleArchiveError,
                        "does not appear to be a valid module")

  # -- unsafe members ---------------------------------------------------------

  def test_dotdot_member_fixture(self):
    self.assert_refused(self.server.url("/hub/broken_path_traversal_tarball"),
                        resolving.UnsafeArchiveError, "'../outside.txt'")
    self.assertFalse(os.path.exists(os.path.join(self.cache_dir,
                                                 "outside.txt")))

  def test_dotdot_inside_member_path(self):
    data = ths.make_tar(self.members + [ths.file_member(
        "assets/../../escape.txt", b"x")])
    self.assert_refused(self.serve("dotdot2", data),
                        resolving.UnsafeArchiveError,
                        "'assets/../../escape.txt'", "..")

  def test_absolute_member(self):
    data = ths.make_tar(self.members + [ths.file_member("/abs_evil.txt",
                                                        b"x")])
    self.assert_refused(self.serve("absolute", data),
                        resolving.UnsafeArchiveError, "'/abs_evil.txt'",
                        "absolute path")

  def test_symlink_fixture(self):
    e = self.assert_refused(self.server.url("/hub/broken_symlink_tarball"),
                            resolving.UnsafeArchiveError, "'assets/evil'",
                            "symbolic link")
    self.assertIsInstance(e, ValueError)

  def test_symlink_inside_module(self):
    data = ths.make_tar(self.members + [ths.special_member(
        "assets/link", tarfile.SYMTYPE, "tokens.txt")])
    self.assert_refused(self.serve("symlink2", data),
                        resolving.UnsafeArchiveError, "symbolic link")

  def test_hard_link(self):
    data = ths.make_tar(self.members + [ths.special_member(
        "assets/hard", tarfile.LNKTYPE, "/etc/passwd")])
    self.assert_refused(self.serve("hardlink", data),
                        resolving.UnsafeArchiveError, "'assets/hard'",
                        "hard link")

  def test_device_files(self):
    for kind, word in ((tarfile.CHRTYPE, "character device"),
                       (tarfile.BLKTYPE, "block device"),
                       (tarfile.FIFOTYPE, "FIFO")):
      with self.subTest(word=word):
        data = ths.make_tar(self.members + [ths.special_member(
            "assets/dev", kind)])
        self.assert_refused(self.serve("dev", data),
                            resolving.UnsafeArchiveError, "'assets/dev'",
                            word)

  def test_zip_bomb_single_member(self):
    os.environ[config.MAX_MODULE_BYTES_ENV] = str(1 << 20)
    data = ths.make_tar(self.members + [ths.file_member(
        "assets/bomb.bin", b"\0" * (30 << 20))])
    self.assertLess(len(data), 100 << 10)
    self.assert_refused(self.serve("bomb", data),
                        resolving.ArchiveTooLargeError, "'assets/bomb.bin'",
                        "limit of 1048576 bytes")

  def test_zip_bomb_many_members(self):
    os.environ[config.MAX_MODULE_BYTES_ENV] = str(1 << 20)
    extra = [ths.file_member("assets/part%03d" % i, b"\0" * (100 << 10))
             for i in range(30)]
    self.assert_refused(self.serve("bomb2", ths.make_tar(self.members +
                                                         extra)),
                        resolving.ArchiveTooLargeError, "limit")

  def test_zip_bomb_of_headers_only(self):
    # Lots of empty entries: few file bytes, but a huge decompressed stream.
    os.environ[config.MAX_MODULE_BYTES_ENV] = str(64 << 10)
    extra = [ths.file_member("assets/e%05d" % i, b"") for i in range(3000)]
    self.assert_refused(self.serve("bomb3", ths.make_tar(self.members +
                                                         extra)),
                        resolving.ArchiveTooLargeError, "expands to more")

  def test_unknown_scheme(self):
    with self.assertRaises(resolving.UnsupportedHandleError) as cm:
      resolving.resolve("ftp://127.0.0.1/module.tar.gz")
    self.assertIn("ftp://127.0.0.1/module.tar.gz", str(cm.exception))
    self.assertIn("Accepted are", str(cm.exception))
    self.assertEqual(cache_listing(self.cache_dir), self.before)

  def test_good_module_still_works_after_all_that(self):
    # Sanity check of the fixture setup: the same server and cache succeed.
    path = resolving.resolve(self.server.url("/hub/text_embedding_nnlm"))
    self.assertIn(os.path.basename(path), os.listdir(self.cache_dir))
    self.assertNotEqual(cache_listing(self.cache_dir), self.before)


if __name__ == "__main__":
  absltest.main()
