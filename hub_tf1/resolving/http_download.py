"""HTTP(S) access for module downloads: query building, TLS, timeouts, errors.

`open_http` opens one attempt and classifies failures: `TransientError` for
what a retry may fix (connection errors, timeouts, 5xx, 408, 429, a body cut
short), `ModuleHttpError` / `DownloadError` for the rest.  The body reader
also reports transient errors that happen mid-transfer, so the retry loop in
`fetch.py` can start the download again.
"""

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Optional, Tuple

from absl import logging

from hub_tf1 import errors as hub_errors
from hub_tf1.resolving import config
from hub_tf1.resolving import errors

_RETRY_STATUSES = (408, 429)
_USER_AGENT = "hub_tf1"


class TransientError(hub_errors.Error, IOError):
  """A failure that another attempt may not see; `status` if it was HTTP.

  Caught by the retry loop (fetch.py), which raises DownloadError when the
  attempts run out; an IOError in case one ever escapes.
  """

  def __init__(self, reason: str, status: Optional[int] = None,
               http_error: Optional[urllib.error.HTTPError] = None):
    super().__init__(reason)
    self.reason = reason
    self.status = status
    self.http_error = http_error


def append_format_query(handle: str, value: str) -> str:
  """`handle` with `tf-hub-format=<value>` added to its query string."""
  parts = list(urllib.parse.urlparse(handle))
  query = urllib.parse.parse_qsl(parts[4])
  query.append(("tf-hub-format", value))
  parts[4] = urllib.parse.urlencode(query)
  return urllib.parse.urlunparse(parts)


def ssl_context() -> ssl.SSLContext:
  context = ssl.create_default_context()
  if config.cert_validation_disabled():
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    logging.log_first_n(
        logging.WARNING,
        "Disabled certificate validation for resolving handles.", 1)
  return context


def urlopen(url: str, timeout: float):
  """Opens `url` with our TLS context and a per-operation timeout."""
  request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
  return urllib.request.urlopen(request, timeout=timeout,
                                context=ssl_context())


def _is_timeout(e: BaseException) -> bool:
  return isinstance(e, (socket.timeout, TimeoutError))


def describe_network_error(e: BaseException,
                           timeout: Optional[float] = None) -> str:
  reason = getattr(e, "reason", None)
  inner = reason if isinstance(reason, BaseException) else e
  if _is_timeout(inner):
    if timeout is None:
      return "timed out"
    return "timed out: no answer for %g s" % timeout
  return "%s: %s" % (type(inner).__name__, inner)


def _is_permanent_network_error(e: BaseException) -> bool:
  reason = getattr(e, "reason", None)
  return isinstance(reason, ssl.SSLCertVerificationError)


class BodyReader:
  """Reads a response body, counting bytes and checking Content-Length."""

  def __init__(self, response, on_bytes: Callable[[int], None],
               timeout: Optional[float] = None):
    self._response = response
    self._on_bytes = on_bytes
    self._timeout = timeout
    length = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity")
    self.expected = (int(length) if length and length.isdigit() and
                     encoded == "identity" else None)
    self.received = 0

  def read(self, size: int = -1) -> bytes:
    try:
      # read1: whatever has arrived (at most `size`), not a full buffer, so
      # progress and stall detection see every packet.
      data = self._response.read1(size)
    except (OSError, http.client.HTTPException) as e:
      raise TransientError("%s (after %d bytes)" % (
          describe_network_error(e, self._timeout), self.received)) from e
    if not data and size and self.expected is not None and (
        self.received < self.expected):
      raise TransientError("connection closed after %d of %d bytes" %
                           (self.received, self.expected))
    self.received += len(data)
    if data:
      self._on_bytes(len(data))
    return data


def open_http(handle: str, url: str,
              timeout: float) -> Tuple[object, Optional[int]]:
  """Opens one download attempt.

  Returns:
    (response, total size in bytes or None).

  Raises:
    TransientError: retrying may help.
    ModuleHttpError: a permanent HTTP error status (404, 403, ...).
    DownloadError: a permanent non-HTTP failure (certificate, bad URL).
  """
  try:
    response = urlopen(url, timeout)
  except urllib.error.HTTPError as e:
    e.close()
    if e.code >= 500 or e.code in _RETRY_STATUSES:
      raise TransientError("HTTP status %d %s" % (e.code, e.reason),
                           status=e.code, http_error=e) from e
    raise errors.ModuleHttpError(handle, url, e.code, str(e.reason), e.headers,
                                 attempts=1) from e
  except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
    if _is_permanent_network_error(e):
      raise errors.DownloadError(handle, url, describe_network_error(e),
                                 attempts=1) from e
    raise TransientError(describe_network_error(e, timeout)) from e
  length = response.headers.get("Content-Length")
  total = int(length) if length and length.isdigit() else None
  return response, total

