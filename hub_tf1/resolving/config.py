"""Settings of resolving and caching, from environment variables and flags.

The names are those of tensorflow_hub 0.15 (`TFHUB_CACHE_DIR`,
`TFHUB_MODEL_LOAD_FORMAT`, `TFHUB_DOWNLOAD_PROGRESS`,
`TFHUB_DISABLE_CERT_VALIDATION` and the `--tfhub_cache_dir` /
`--tfhub_model_load_format` flags) so that existing setups keep working.  The
`HUB_TF1_*` variables tune what the original did not let users tune: timeouts,
retries, the lock timing and the extraction size limit.

`TFHUB_CACHE_ONLY` (or `--tfhub_cache_only`) is ours too, named next to
`TFHUB_CACHE_DIR` where users look for it: when true, nothing is downloaded
(no HTTP request, no archive streamed from gs://); handles that would be
downloaded are looked up in the cache only.

Everything is read when needed, not at import time, so a test (or a program)
can change the environment between two calls.
"""

import dataclasses
import os
import tempfile
from typing import Optional

from absl import flags
from absl import logging

CACHE_DIR_ENV = "TFHUB_CACHE_DIR"
LOAD_FORMAT_ENV = "TFHUB_MODEL_LOAD_FORMAT"
DOWNLOAD_PROGRESS_ENV = "TFHUB_DOWNLOAD_PROGRESS"
DISABLE_CERT_VALIDATION_ENV = "TFHUB_DISABLE_CERT_VALIDATION"
CACHE_ONLY_ENV = "TFHUB_CACHE_ONLY"

MAX_MODULE_BYTES_ENV = "HUB_TF1_MAX_MODULE_BYTES"
DOWNLOAD_TIMEOUT_ENV = "HUB_TF1_DOWNLOAD_TIMEOUT_SEC"
DOWNLOAD_ATTEMPTS_ENV = "HUB_TF1_DOWNLOAD_ATTEMPTS"
DOWNLOAD_BACKOFF_ENV = "HUB_TF1_DOWNLOAD_BACKOFF_SEC"
LOCK_STALE_ENV = "HUB_TF1_LOCK_STALE_SEC"
LOCK_POLL_ENV = "HUB_TF1_LOCK_POLL_SEC"

CACHE_DIR_FLAG = "tfhub_cache_dir"
LOAD_FORMAT_FLAG = "tfhub_model_load_format"
CACHE_ONLY_FLAG = "tfhub_cache_only"

COMPRESSED = "COMPRESSED"
UNCOMPRESSED = "UNCOMPRESSED"
AUTO = "AUTO"
LOAD_FORMATS = (COMPRESSED, UNCOMPRESSED, AUTO)

DEFAULT_MAX_MODULE_BYTES = 64 << 30
DEFAULT_DOWNLOAD_TIMEOUT_SEC = 60.0
DEFAULT_DOWNLOAD_ATTEMPTS = 3
DEFAULT_DOWNLOAD_BACKOFF_SEC = 1.0
DEFAULT_LOCK_STALE_SEC = 60.0
DEFAULT_LOCK_POLL_SEC = 1.0

_FALSE_WORDS = ("0", "false", "no", "off")
_TRUE_WORDS = ("1", "true", "yes", "on")


def _define_flags() -> None:
  """Defines the original's two flags unless some library already did.

  `allow_override` lets tensorflow_hub (or anyone) define the same flags later
  in the same process without a DuplicateFlagError.
  """
  if CACHE_DIR_FLAG not in flags.FLAGS:
    flags.DEFINE_string(
        CACHE_DIR_FLAG, None,
        "Directory where TF-Hub modules are downloaded and cached "
        "(overridden by the TFHUB_CACHE_DIR environment variable).",
        allow_override=True)
  if LOAD_FORMAT_FLAG not in flags.FLAGS:
    flags.DEFINE_enum(
        LOAD_FORMAT_FLAG, AUTO, list(LOAD_FORMATS),
        "COMPRESSED (download and cache the tarball), UNCOMPRESSED (read the "
        "module in place from the gs:// location the server names) or AUTO "
        "(= COMPRESSED); overridden by TFHUB_MODEL_LOAD_FORMAT.",
        allow_override=True)
  if CACHE_ONLY_FLAG not in flags.FLAGS:
    flags.DEFINE_bool(
        CACHE_ONLY_FLAG, False,
        "Never download modules: use only what is in the cache "
        "(overridden by the TFHUB_CACHE_ONLY environment variable).",
        allow_override=True)


_define_flags()


def _flag_value(name: str) -> Optional[str]:
  """Reads a flag without parsing argv (it may hold unknown flags)."""
  try:
    return flags.FLAGS[name].value
  except KeyError:
    return None


def env_or_flag(env_var: str, flag_name: str) -> Optional[str]:
  """The environment variable if non-empty, else the flag's value."""
  return os.environ.get(env_var, "") or _flag_value(flag_name)


def default_cache_dir() -> str:
  return os.path.join(tempfile.gettempdir(), "tfhub_modules")


def cache_dir() -> str:
  """The cache root: TFHUB_CACHE_DIR, --tfhub_cache_dir or the temp default."""
  result = env_or_flag(CACHE_DIR_ENV, CACHE_DIR_FLAG) or default_cache_dir()
  logging.log_first_n(logging.INFO, "Using %s to cache modules.", 1, result)
  return result


def model_load_format() -> str:
  """COMPRESSED, UNCOMPRESSED or AUTO.

  Raises:
    ValueError: the environment variable holds something else.
  """
  value = env_or_flag(LOAD_FORMAT_ENV, LOAD_FORMAT_FLAG) or AUTO
  if value not in LOAD_FORMATS:
    raise ValueError("%s=%r is not one of %s." %
                     (LOAD_FORMAT_ENV, value, ", ".join(LOAD_FORMATS)))
  return value


def progress_setting() -> Optional[bool]:
  """True/False when TFHUB_DOWNLOAD_PROGRESS asks for it, None when unset.

  Like the original, any non-empty value turns interactive progress on; in
  addition "0", "false", "no" and "off" turn it off even on a terminal.
  """
  value = os.environ.get(DOWNLOAD_PROGRESS_ENV, "")
  if not value:
    return None
  return value.strip().lower() not in _FALSE_WORDS


def cache_only() -> bool:
  """Whether downloads are forbidden (TFHUB_CACHE_ONLY / --tfhub_cache_only).

  Raises:
    ValueError: the environment variable is not a yes/no word.
  """
  raw = os.environ.get(CACHE_ONLY_ENV, "")
  if not raw:
    return bool(_flag_value(CACHE_ONLY_FLAG))
  value = raw.strip().lower()
  if value in _TRUE_WORDS:
    return True
  if value in _FALSE_WORDS:
    return False
  raise ValueError("%s=%r is not one of %s." % (
      CACHE_ONLY_ENV, raw, ", ".join(_TRUE_WORDS + _FALSE_WORDS)))


def cert_validation_disabled() -> bool:
  return os.environ.get(DISABLE_CERT_VALIDATION_ENV) == "true"


def _env_number(name: str, default: float, minimum: float) -> float:
  raw = os.environ.get(name, "")
  if not raw:
    return default
  try:
    value = float(raw)
  except ValueError:
    raise ValueError("%s=%r is not a number." % (name, raw)) from None
  if value < minimum:
    raise ValueError("%s=%r must be >= %s." % (name, raw, minimum))
  return value


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
  """Knobs of one download; `from_env()` fills them from the environment."""
  timeout_sec: float = DEFAULT_DOWNLOAD_TIMEOUT_SEC
  attempts: int = DEFAULT_DOWNLOAD_ATTEMPTS
  backoff_sec: float = DEFAULT_DOWNLOAD_BACKOFF_SEC
  max_module_bytes: int = DEFAULT_MAX_MODULE_BYTES

  @classmethod
  def from_env(cls) -> "DownloadSettings":
    return cls(
        timeout_sec=_env_number(DOWNLOAD_TIMEOUT_ENV,
                                DEFAULT_DOWNLOAD_TIMEOUT_SEC, 0.001),
        attempts=int(_env_number(DOWNLOAD_ATTEMPTS_ENV,
                                 DEFAULT_DOWNLOAD_ATTEMPTS, 1)),
        backoff_sec=_env_number(DOWNLOAD_BACKOFF_ENV,
                                DEFAULT_DOWNLOAD_BACKOFF_SEC, 0),
        max_module_bytes=int(_env_number(MAX_MODULE_BYTES_ENV,
                                         DEFAULT_MAX_MODULE_BYTES, 0)))


@dataclasses.dataclass(frozen=True)
class LockSettings:
  """Lock timing: staleness bound and polling / heartbeat periods."""
  stale_sec: float = DEFAULT_LOCK_STALE_SEC
  poll_sec: float = DEFAULT_LOCK_POLL_SEC

  @property
  def heartbeat_sec(self) -> float:
    # Several heartbeats fit in one staleness window, so one slow beat (a busy
    # machine) does not make a live owner look dead.
    return max(0.05, min(5.0, self.stale_sec / 6.0))

  @classmethod
  def from_env(cls) -> "LockSettings":
    stale = _env_number(LOCK_STALE_ENV, DEFAULT_LOCK_STALE_SEC, 0.1)
    poll = _env_number(LOCK_POLL_ENV, min(DEFAULT_LOCK_POLL_SEC, stale / 4),
                       0.01)
    return cls(stale_sec=stale, poll_sec=poll)
