"""Memory that the hypervisor has backed, for every measurement alike.

Rules of this file:
- Standard library only (the driver runs it with any Python 3).
- It changes one machine setting, the kernel's free page reporting order, and
  only inside `steady_host_memory()`, which puts the old value back on the
  way out (also on Ctrl-C and SIGTERM).  Where the setting is absent or not
  writable it changes nothing and says why.

Why: on a virtual machine with free page reporting (a virtio balloon; here
`/sys/module/page_reporting/parameters`), pages the guest frees are handed
back to the host, and the guest's next touch of such a page waits for the
host to back it again.  Writing 1 GB then costs 0.25 s of system time on
backed pages and about 3 s on handed-back ones (`python3
bench/host_memory.py` runs that probe; bench/README.md), and which kind a
process gets depends on what ran before it and when.  A timed write, a variable's first
allocation, any page cache growth are then bimodal for reasons outside the
process.  So the driver stops the reporting for the run (a reporting order
above the largest free block the buddy allocator keeps: no block qualifies)
and touches the free memory once, so that every later allocation finds
backed pages, as on a physical machine.
"""

import argparse
import contextlib
import mmap
import os
import resource
import signal
import time
from typing import Iterator, Optional

_PARAMS = "/sys/module/page_reporting/parameters"
_ORDER = os.path.join(_PARAMS, "page_reporting_order")
_REPORTED = os.path.join(_PARAMS, "reported_kib")
_CHUNK = 64 << 20


def _read(path: str) -> Optional[str]:
  try:
    with open(path) as f:  # sysfs/procfs.
      return f.read().strip()
  except OSError:
    return None


def reported_kib() -> Optional[int]:
  """KiB the kernel has reported free to the host so far, or None."""
  value = _read(_REPORTED)
  return int(value) if value and value.isdigit() else None


def _max_order() -> int:
  """The largest free-block order of the buddy allocator (/proc/buddyinfo)."""
  text = _read("/proc/buddyinfo") or ""
  counts = [len(line.split()) - 4 for line in text.splitlines()
            if line.startswith("Node")]
  return max(counts) - 1 if counts else 10


def _mem_free_bytes() -> int:
  for line in (_read("/proc/meminfo") or "").splitlines():
    if line.startswith("MemFree:"):
      return int(line.split()[1]) * 1024
  return 0


def warm_free_memory(margin_bytes: int = 1 << 30) -> int:
  """Touches all free memory but `margin_bytes` once; returns bytes touched.

  The pages are freed again on return; with reporting stopped they stay
  backed by the host.
  """
  size = (_mem_free_bytes() - margin_bytes) // _CHUNK * _CHUNK
  if size <= 0:
    return 0
  zeros = bytes(_CHUNK)
  with mmap.mmap(-1, size) as area:
    for _ in range(size // _CHUNK):
      area.write(zeros)
  return size


@contextlib.contextmanager
def steady_host_memory(enabled: bool = True) -> Iterator[str]:
  """Stops free page reporting and warms free memory for the block.

  Args:
    enabled: False changes nothing (the note says so).

  Yields:
    One sentence for the results: what was done, or why not.
  """
  old = _read(_ORDER)
  if not enabled or old is None:
    yield ("free page reporting left as it is (%s)" %
           ("--keep-page-reporting" if enabled is False else
            "this machine has no %s" % _ORDER))
    return
  paused = str(_max_order() + 1)
  try:
    with open(_ORDER, "w") as f:
      f.write(paused)
  except OSError as e:
    yield "free page reporting left as it is (%s: %s)" % (_ORDER, e)
    return

  previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
  try:
    t0 = time.time()
    touched = warm_free_memory()
    yield ("free page reporting stopped for the run (%s %s -> %s, put back "
           "after) and %.1f GB of free memory touched once in %.0f s, so "
           "that no allocation waits for the host to back a page" %
           (_ORDER, old, paused, touched / 1e9, time.time() - t0))
  finally:
    with open(_ORDER, "w") as f:
      f.write(old)
    signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, unused_frame):
  raise SystemExit(128 + signum)  # Unwinds through the `finally` above.


def _timed_writes(path: str, data: bytes, count: int, label: str) -> None:
  """Writes `data` to `path` `count` times; prints wall, user, system s."""
  for _ in range(count):
    if os.path.exists(path):
      os.unlink(path)
    os.sync()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.time()
    with open(path, "wb") as f:
      f.write(data)
    wall, after = time.time() - start, resource.getrusage(resource.RUSAGE_SELF)
    print("%-22s wall %.3f s  user %.3f s  system %.3f s" %
          (label, wall, after.ru_utime - before.ru_utime,
           after.ru_stime - before.ru_stime), flush=True)
    time.sleep(3)  # Time for the kernel to report what was freed.
  os.unlink(path)


def main() -> None:
  """The probe behind bench/README.md's "Host memory": one 1 GB write, timed.

  python3 bench/host_memory.py [--writes N] [--path FILE]

  Writes 1 GB of bytes already in memory N times as the machine is, then N
  times inside `steady_host_memory()`.
  """
  parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
  parser.add_argument("--writes", type=int, default=4)
  parser.add_argument("--path", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "work", "host_memory.bin"))
  args = parser.parse_args()
  os.makedirs(os.path.dirname(args.path), exist_ok=True)
  data = os.urandom(1 << 20) * 1024
  _timed_writes(args.path, data, args.writes, "as the machine is")
  with steady_host_memory() as note:
    print(note, flush=True)
    _timed_writes(args.path, data, args.writes, "reporting stopped")


if __name__ == "__main__":
  main()
