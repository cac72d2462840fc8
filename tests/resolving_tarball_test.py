"""Streaming extraction of module archives (no network): formats, checks."""

import bz2
import gzip
import io
import lzma
import os
import tarfile

from absl.testing import absltest

from hub_tf1.resolving import errors
from hub_tf1.resolving import tarball
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_MODULE_DIR = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules",
                           "text_embedding_nnlm")
_LIMIT = 1 << 30
_COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress,
                "xz": lzma.compress}


class _Trickle:
  """Returns at most `n` bytes per read, like a slow socket."""

  def __init__(self, data, n):
    self._f = io.BytesIO(data)
    self._n = n

  def read(self, size=-1):
    return self._f.read(min(self._n, size if size and size > 0 else self._n))


class ExtractTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.members = ths.module_members(_MODULE_DIR)
    self.want = ths.dir_files(_MODULE_DIR)

  def extract(self, data, reader=None, limit=_LIMIT):
    dst = self.create_tempdir().full_path
    written = tarball.extract(reader or io.BytesIO(data), dst, "H", limit)
    tarball.verify_module_dir(dst, "H")
    return dst, written

  def test_compressions(self):
    for compression in ("", "gz", "bz2", "xz"):
      with self.subTest(compression=compression):
        dst, written = self.extract(ths.make_tar(self.members, compression))
        self.assertEqual(ths.dir_files(dst), self.want)
        self.assertEqual(written, sum(len(v) for v in self.want.values()))

  def test_one_byte_at_a_time(self):
    data = ths.make_tar(self.members)
    dst, _ = self.extract(None, reader=_Trickle(data, 1))
    self.assertEqual(ths.dir_files(dst), self.want)

  def test_dot_slash_names_as_written_by_tar_dash_c(self):
    root = tarfile.TarInfo(".")
    root.type = tarfile.DIRTYPE
    members = [(root, b"")]
    for info, data in self.members:
      info.name = "./" + info.name
      members.append((info, data))
    dst, _ = self.extract(ths.make_tar(members))
    self.assertEqual(ths.dir_files(dst), self.want)

  def test_files_without_directory_entries(self):
    members = [m for m in self.members if not m[0].isdir()]
    dst, _ = self.extract(ths.make_tar(members))
    self.assertEqual(ths.dir_files(dst), self.want)

  def test_long_names_in_pax_and_gnu_formats(self):
    long_name = "assets/" + "x" * 180 + ".txt"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
      with self.subTest(fmt=fmt):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=fmt) as tar:
          for info, data in self.members + [ths.file_member(long_name,
                                                            b"long")]:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
        dst, _ = self.extract(buf.getvalue())
        with open(os.path.join(dst, long_name), "rb") as f:
          self.assertEqual(f.read(), b"long")

  def test_multi_member_gzip_and_zero_padding(self):
    plain = ths.make_tar(self.members, compression="")
    half = len(plain) // 2
    data = gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    dst, _ = self.extract(data + b"\0" * 3000)
    self.assertEqual(ths.dir_files(dst), self.want)

  def test_multi_member_bzip2_and_xz(self):
    plain = ths.make_tar(self.members, compression="")
    third = len(plain) // 3
    for kind in ("bzip2", "xz"):
      with self.subTest(kind=kind):
        compress = _COMPRESSORS[kind]
        data = b"".join(compress(plain[i:i + third])
                        for i in range(0, len(plain), third))
        dst, _ = self.extract(data)
        self.assertEqual(ths.dir_files(dst), self.want)

  def test_truncated_compressed_streams(self):
    plain = ths.make_tar(self.members, compression="")
    for kind, compress in sorted(_COMPRESSORS.items()):
      data = compress(plain)
      # Cut inside the data, and just before the end marker / checksum.
      for cut in (len(data) // 2, len(data) - 4):
        with self.subTest(kind=kind, cut=cut):
          dst = self.create_tempdir().full_path
          with self.assertRaisesRegex(
              errors.InvalidModuleArchiveError,
              "^H does not appear to be a valid module: the %s stream ends "
              "prematurely" % kind):
            tarball.extract(io.BytesIO(data[:cut]), dst, "H", _LIMIT)

  def test_truncated_second_gzip_member(self):
    plain = ths.make_tar(self.members, compression="")
    half = len(plain) // 2
    second = gzip.compress(plain[half:])
    data = gzip.compress(plain[:half]) + second[:len(second) // 2]
    dst = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.InvalidModuleArchiveError,
                                "gzip stream ends prematurely"):
      tarball.extract(io.BytesIO(data), dst, "H", _LIMIT)

  def test_bad_checksum_of_the_last_gzip_member_is_not_ignored(self):
    data = bytearray(ths.make_tar(self.members))
    data[-8] ^= 0xFF  # The CRC32 in the gzip trailer.
    dst = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.InvalidModuleArchiveError,
                                "gzip stream is damaged"):
      tarball.extract(io.BytesIO(bytes(data)), dst, "H", _LIMIT)

  def test_corrupt_xz_data(self):
    data = bytearray(ths.make_tar(self.members, compression="xz"))
    for i in range(100, 300):
      data[i] ^= 0x5A
    dst = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.InvalidModuleArchiveError,
                                "xz stream is damaged"):
      tarball.extract(io.BytesIO(bytes(data)), dst, "H", _LIMIT)

  def test_errors_of_the_raw_stream_pass_unchanged(self):

    class Failing(io.BytesIO):

      def read(self, size=-1):
        if self.tell() > 1000:
          raise ConnectionResetError("simulated reset")
        return super().read(min(size, 500) if size and size > 0 else 500)
    for compression in ("", "gz", "bz2", "xz"):
      with self.subTest(compression=compression):
        data = ths.make_tar(self.members, compression)
        dst = self.create_tempdir().full_path
        with self.assertRaisesRegex(ConnectionResetError, "simulated reset"):
          tarball.extract(Failing(data), dst, "H", _LIMIT)

  def test_garbage_after_bzip2_is_ignored(self):
    data = ths.make_tar(self.members, compression="bz2") + b"trailing junk"
    dst, _ = self.extract(data)
    self.assertEqual(ths.dir_files(dst), self.want)

  def test_garbage_after_the_archive_is_ignored_with_a_warning(self):
    data = ths.make_tar(self.members) + b"trailing junk"
    with self.assertLogs("absl", "WARNING") as logs:
      dst, _ = self.extract(data)
    self.assertEqual(ths.dir_files(dst), self.want)
    self.assertIn("Ignoring data after", "\n".join(logs.output))

  def test_damaged_header_in_the_middle(self):
    plain = bytearray(ths.make_tar(self.members, compression=""))
    with tarfile.open(fileobj=io.BytesIO(bytes(plain))) as tar:
      offset = tar.getmembers()[3].offset
    plain[offset:offset + 100] = b"\x01" * 100  # Breaks name and checksum.
    dst = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.InvalidModuleArchiveError,
                                "truncated or damaged at offset %d" % offset):
      tarball.extract(io.BytesIO(gzip.compress(bytes(plain))), dst, "H",
                      _LIMIT)

  def test_empty_archive_is_not_a_module(self):
    dst = self.create_tempdir().full_path
    tarball.extract(io.BytesIO(ths.make_tar([])), dst, "H", _LIMIT)
    with self.assertRaisesRegex(errors.InvalidModuleArchiveError,
                                "H does not appear to be a valid module: .*"
                                "tfhub_module.pb"):
      tarball.verify_module_dir(dst, "H")

  def test_file_in_place_of_the_root(self):
    dst = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.UnsafeArchiveError, "root"):
      tarball.extract(io.BytesIO(ths.make_tar([ths.file_member("./", b"x")])),
                      dst, "H", _LIMIT)

  def test_exact_limit_is_allowed(self):
    total = sum(len(v) for v in self.want.values())
    _, written = self.extract(ths.make_tar(self.members), limit=total)
    self.assertEqual(written, total)
    dst = self.create_tempdir().full_path
    with self.assertRaises(errors.ArchiveTooLargeError):
      tarball.extract(io.BytesIO(ths.make_tar(self.members)), dst, "H",
                      total - 1)


if __name__ == "__main__":
  absltest.main()
