"""A local HTTP server for download tests: real sockets on 127.0.0.1.

Serves the files of a directory.  `GET /hub/<stem>?tf-hub-format=compressed`
answers with `<stem>.tar.gz` (the tfhub.dev convention); any other path is the
file itself (the query is ignored).  Every request is recorded, and per path
(or for all paths) a `Behavior` makes the server misbehave: fail with a status
(optionally only the first N times), send part of the body and then stall or
cut the connection, send slowly, or answer 303 with a body.

Use it in-thread:

  with TestingHttpServer(root) as server:
    url = server.url("/hub/module")

or as a subprocess (`python testing_http_server.py --root DIR --port_file F
--log_file L [--throttle_bytes N --throttle_delay S]`), e.g. through
`SubprocessHttpServer`, which reads the port and the request log back.

`ResolvingTestCase` is the base class of the resolving tests: a clean resolving
environment, a temp cache and a server per test.
"""

import argparse
import dataclasses
import gzip
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tarfile
from typing import Dict, List, Optional, Sequence, Tuple

from absl.testing import absltest


@dataclasses.dataclass
class Behavior:
  """How to answer a path (defaults: serve normally)."""
  status: Optional[int] = None  # Answer with this status instead.
  fail_times: Optional[int] = None  # Only the first N requests get `status`.
  body: Optional[bytes] = None  # Body to send instead of the file.
  stall_after: Optional[int] = None  # Send N body bytes, then stall.
  cut_after: Optional[int] = None  # Send N body bytes, then close.
  throttle_bytes: Optional[int] = None  # Send this many bytes per step...
  throttle_delay: float = 0.0  # ...with this delay between steps.
  send_length: bool = True  # Send a Content-Length header.


@dataclasses.dataclass
class Request:
  path: str
  bytes_sent: int = 0
  completed: bool = False


class TestingHttpServer:
  """Threaded HTTP server on 127.0.0.1 with request counting and faults."""

  def __init__(self, root: str, port: int = 0):
    self.root = root
    self.requests = []  # type: List[Request]
    self.behaviors = {}  # type: Dict[str, Behavior]
    self.default_behavior = Behavior()
    self._lock = threading.Lock()
    self._closing = threading.Event()
    self._counts = {}  # type: Dict[str, int]
    self.on_request = None  # Optional callback(Request), e.g. for logging.
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def do_GET(self):  # pylint: disable=invalid-name
        server._handle(self)  # pylint: disable=protected-access

      def log_message(self, *args):
        pass

    class CountingServer(http.server.ThreadingHTTPServer):

      def process_request(self, request, client_address):
        with server._lock:  # pylint: disable=protected-access
          server.connections += 1
        super().process_request(request, client_address)

    self.connections = 0  # Accepted TCP connections (whatever was sent).
    self.httpd = CountingServer(("127.0.0.1", port), Handler)
    self.httpd.daemon_threads = True
    self.httpd.block_on_close = False
    self.port = self.httpd.server_address[1]
    self._thread = None

  # -- control --------------------------------------------------------------

  def start(self) -> "TestingHttpServer":
    self._thread = threading.Thread(target=self.httpd.serve_forever,
                                    daemon=True)
    self._thread.start()
    return self

  def stop(self) -> None:
    self._closing.set()
    self.httpd.shutdown()
    self.httpd.server_close()
    if self._thread is not None:
      self._thread.join(timeout=10)

  def __enter__(self) -> "TestingHttpServer":
    return self.start()

  def __exit__(self, *unused) -> None:
    self.stop()

  def url(self, path: str) -> str:
    return "http://127.0.0.1:%d%s" % (self.port, path)

  def set_behavior(self, path: Optional[str], behavior: Behavior) -> None:
    """Sets the behaviour for a URL path (without query), or for all if None."""
    with self._lock:
      if path is None:
        self.default_behavior = behavior
      else:
        self.behaviors[path] = behavior

  def request_count(self, path: Optional[str] = None) -> int:
    with self._lock:
      return sum(1 for r in self.requests
                 if path is None or r.path.partition("?")[0] == path)

  def completed_count(self, path: Optional[str] = None) -> int:
    with self._lock:
      return sum(1 for r in self.requests if r.completed and (
          path is None or r.path.partition("?")[0] == path))

  def paths(self) -> List[str]:
    with self._lock:
      return [r.path for r in self.requests]

  # -- serving --------------------------------------------------------------

  def _file_for(self, raw_path: str) -> Optional[str]:
    path, _, query = raw_path.partition("?")
    rel = path.lstrip("/")
    if path.startswith("/hub/") and "tf-hub-format=compressed" in query:
      rel = path[len("/hub/"):] + ".tar.gz"
    full = os.path.normpath(os.path.join(self.root, rel))
    if not full.startswith(os.path.abspath(self.root) + os.sep):
      return None
    return full if os.path.isfile(full) else None

  def _handle(self, handler) -> None:
    record = Request(path=handler.path)
    path = handler.path.partition("?")[0]
    with self._lock:
      self.requests.append(record)
      behavior = self.behaviors.get(path, self.default_behavior)
      count = self._counts.get(path, 0)
      self._counts[path] = count + 1
    if self.on_request is not None:
      self.on_request(record)
    status = behavior.status
    if status is not None and behavior.fail_times is not None and (
        count >= behavior.fail_times):
      status = None
    if status is not None and behavior.body is None:
      handler.send_response(status)
      handler.send_header("Content-Length", "0")
      handler.send_header("Connection", "close")
      handler.end_headers()
      handler.close_connection = True
      record.completed = True
      return
    data = behavior.body
    if data is None:
      full = self._file_for(handler.path)
      if full is None:
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        return
      with open(full, "rb") as f:
        data = f.read()
    handler.send_response(status or 200)
    handler.send_header("Content-Type", "application/x-gzip")
    if behavior.send_length:
      handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    limit = len(data)
    for cut in (behavior.stall_after, behavior.cut_after):
      if cut is not None:
        limit = min(limit, cut)
    step = behavior.throttle_bytes or limit or 1
    try:
      pos = 0
      while pos < limit:
        chunk = data[pos:min(limit, pos + step)]
        handler.wfile.write(chunk)
        handler.wfile.flush()
        pos += len(chunk)
        with self._lock:
          record.bytes_sent = pos
        if behavior.throttle_delay and pos < limit:
          if self._closing.wait(behavior.throttle_delay):
            return
      if behavior.stall_after is not None and limit < len(data):
        self._closing.wait(3600)
        return
      if behavior.cut_after is not None and limit < len(data):
        handler.connection.shutdown(socket.SHUT_RDWR)
        return
      with self._lock:
        record.completed = True
    except (BrokenPipeError, ConnectionResetError):
      pass


# -- archives to serve ---------------------------------------------------------


def tarball_files(path: str) -> Dict[str, bytes]:
  """{relative file path: bytes} of the regular files in a tarball."""
  out = {}
  with tarfile.open(path, "r:*") as tar:
    for m in tar.getmembers():
      if m.isfile():
        out[os.path.normpath(m.name)] = tar.extractfile(m).read()
  return out


def dir_files(path: str) -> Dict[str, bytes]:
  """{relative file path: bytes} of the files below a directory."""
  out = {}
  for root, _, files in os.walk(path):
    for name in files:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


def module_members(module_dir: str) -> List[Tuple[tarfile.TarInfo, bytes]]:
  """The members of a module folder as a tarball would hold them."""
  members = []
  for root, dirs, files in os.walk(module_dir):
    dirs.sort()
    rel_root = os.path.relpath(root, module_dir)
    if rel_root != ".":
      info = tarfile.TarInfo(rel_root)
      info.type = tarfile.DIRTYPE
      info.mode = 0o755
      members.append((info, b""))
    for name in sorted(files):
      with open(os.path.join(root, name), "rb") as f:
        data = f.read()
      rel = name if rel_root == "." else rel_root + "/" + name
      info = tarfile.TarInfo(rel)
      info.size = len(data)
      info.mode = 0o644
      members.append((info, data))
  return members


def file_member(name: str, data: bytes) -> Tuple[tarfile.TarInfo, bytes]:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  return info, data


def special_member(name: str, kind: bytes,
                   linkname: str = "") -> Tuple[tarfile.TarInfo, bytes]:
  """A non-file member (tarfile.SYMTYPE, LNKTYPE, CHRTYPE, FIFOTYPE ...)."""
  info = tarfile.TarInfo(name)
  info.type = kind
  info.linkname = linkname
  return info, b""


def make_tar(members: Sequence[Tuple[tarfile.TarInfo, bytes]],
             compression: str = "gz") -> bytes:
  """A tar archive of `members` ("" for none, "gz", "bz2" or "xz")."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:" + compression,
                    format=tarfile.GNU_FORMAT) as tar:
    for info, data in members:
      tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
  return buf.getvalue()


def member_boundary_truncation(members: Sequence[Tuple[tarfile.TarInfo,
                                                       bytes]],
                               keep: int) -> bytes:
  """A gzipped tar of the first `keep` members without the end blocks.

  The gzip stream itself is complete; only the tar stream stops early, exactly
  at a member boundary (tensorflow_hub accepted such archives).
  """
  plain = make_tar(members, compression="")
  offset = 0
  with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
    for i, info in enumerate(tar.getmembers()):
      if i == keep:
        offset = info.offset
        break
  return gzip.compress(plain[:offset])


# -- base class of the resolving tests -----------------------------------------

# Every setting hub_tf1.resolving reads from the environment, named by its
# attribute in hub_tf1.resolving.config.  That module is imported only when a
# test starts: the script mode below must run without hub_tf1 and TensorFlow.
_ENV_VARS = ("CACHE_DIR_ENV", "LOAD_FORMAT_ENV", "DOWNLOAD_PROGRESS_ENV",
             "DISABLE_CERT_VALIDATION_ENV", "DOWNLOAD_ATTEMPTS_ENV",
             "DOWNLOAD_BACKOFF_ENV", "DOWNLOAD_TIMEOUT_ENV",
             "MAX_MODULE_BYTES_ENV", "LOCK_STALE_ENV", "LOCK_POLL_ENV",
             "CACHE_ONLY_ENV")


class ResolvingTestCase(absltest.TestCase):
  """A clean resolving environment, a temp cache and a server per test.

  setUp saves and clears the variables of `_ENV_VARS`, points the cache at a
  new temp dir `self.cache_dir`, sets the variables of `env`, copies
  `served_files` into a new temp dir `self.served` and serves that from
  `self.server`.  tearDown stops the server and restores the environment.
  """

  env = {}  # type: Dict[str, str]  # Variable: value, set for every test.
  served_files = ()  # type: Sequence[str]  # Paths of the files to serve.

  def setUp(self):
    super().setUp()
    from hub_tf1.resolving import config  # pylint: disable=g-import-not-at-top
    names = [getattr(config, attr) for attr in _ENV_VARS]
    self._saved_env = {k: os.environ.get(k) for k in names}
    for k in names:
      os.environ.pop(k, None)
    self.cache_dir = self.create_tempdir().full_path
    os.environ[config.CACHE_DIR_ENV] = self.cache_dir
    os.environ.update(self.env)
    self.served = self.create_tempdir().full_path
    for src in self.served_files:
      shutil.copy(src, self.served)
    self.server = TestingHttpServer(self.served).start()

  def tearDown(self):
    self.server.stop()
    for k, v in self._saved_env.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    super().tearDown()


# -- subprocess mode -----------------------------------------------------------


class SubprocessHttpServer:
  """Runs this file as a server subprocess; reads port and request log."""

  def __init__(self, root: str, workdir: str, throttle_bytes: int = 0,
               throttle_delay: float = 0.0):
    self.port_file = os.path.join(workdir, "server.port")
    self.log_file = os.path.join(workdir, "server.log")
    args = [sys.executable, os.path.abspath(__file__), "--root", root,
            "--port_file", self.port_file, "--log_file", self.log_file]
    if throttle_bytes:
      args += ["--throttle_bytes", str(throttle_bytes), "--throttle_delay",
               str(throttle_delay)]
    self.process = subprocess.Popen(args)
    deadline = time.monotonic() + 60
    while not os.path.exists(self.port_file):
      if self.process.poll() is not None or time.monotonic() > deadline:
        self.stop()
        raise RuntimeError("test HTTP server did not start")
      time.sleep(0.05)
    with open(self.port_file) as f:
      self.port = int(f.read())

  def url(self, path: str) -> str:
    return "http://127.0.0.1:%d%s" % (self.port, path)

  def log(self) -> List[dict]:
    if not os.path.exists(self.log_file):
      return []
    with open(self.log_file) as f:
      return [json.loads(line) for line in f if line.strip()]

  def stop(self) -> None:
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()

  def __enter__(self) -> "SubprocessHttpServer":
    return self

  def __exit__(self, *unused) -> None:
    self.stop()


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--root", required=True)
  parser.add_argument("--port_file", required=True)
  parser.add_argument("--log_file", required=True)
  parser.add_argument("--throttle_bytes", type=int, default=0)
  parser.add_argument("--throttle_delay", type=float, default=0.0)
  args = parser.parse_args(argv)
  server = TestingHttpServer(args.root)
  if args.throttle_bytes:
    server.set_behavior(None, Behavior(throttle_bytes=args.throttle_bytes,
                                       throttle_delay=args.throttle_delay))
  log_lock = threading.Lock()

  def log(record: Request) -> None:
    with log_lock, open(args.log_file, "a") as f:
      f.write(json.dumps({"path": record.path}) + "\n")
  server.on_request = log
  server.start()
  tmp = args.port_file + ".tmp"
  with open(tmp, "w") as f:
    f.write(str(server.port))
  os.replace(tmp, args.port_file)
  try:
    while True:
      time.sleep(3600)
  except KeyboardInterrupt:
    pass
  finally:
    server.stop()


if __name__ == "__main__":
  main()
