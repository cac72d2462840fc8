"""`hub-tf1 cache list|prefetch HANDLE...|remove HANDLE...`.

Prepares a module cache on a connected machine for copying to one without a
network (see hub_tf1/resolving/cache_admin.py).  `--cache_dir` defaults to
TFHUB_CACHE_DIR (or the system temp dir's tfhub_modules, like loading).
Exit codes: 0 done, 1 some handle failed (each failure on stderr).
"""

import argparse
import dataclasses
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the cache subcommands to `parser`."""
  parser.add_argument("--cache_dir", default=None,
                      help="cache directory (default: TFHUB_CACHE_DIR)")
  actions = parser.add_subparsers(dest="action", metavar="ACTION",
                                  required=True)
  listing = actions.add_parser("list", help="list the cached modules")
  listing.add_argument("--json", action="store_true", help="JSON output")
  fetching = actions.add_parser(
      "prefetch", help="download modules into the cache (progress shown)")
  fetching.add_argument("handles", nargs="+", metavar="HANDLE")
  removing = actions.add_parser("remove", help="delete cache entries")
  removing.add_argument("handles", nargs="+", metavar="HANDLE_OR_KEY")


def _list(args: argparse.Namespace) -> int:
  # pylint: disable=g-import-not-at-top
  from hub_tf1.resolving import cache_admin
  from hub_tf1.resolving import config
  from hub_tf1.resolving import progress
  cache_dir = args.cache_dir or config.cache_dir()
  entries = cache_admin.list_entries(cache_dir)
  if args.json:
    json.dump({"cache_dir": cache_dir,
               "entries": [dataclasses.asdict(e) for e in entries]},
              sys.stdout, indent=1, sort_keys=True)
    print()
    return 0
  for e in entries:
    print("%s  %9s  %s%s" % (e.key, progress.readable_size(e.size_bytes),
                             e.handle or "(no descriptor)",
                             "" if e.complete else "  [incomplete]"))
  print("%d module(s) in %s" % (len(entries), cache_dir))
  return 0


def _each(handles, action, verb: str) -> int:
  failed = 0
  for handle in handles:
    try:
      path = action(handle)
    except Exception as e:  # pylint: disable=broad-except
      print("hub-tf1 cache %s: %s: %s" % (verb, handle, e), file=sys.stderr)
      failed += 1
      continue
    print("%s %s: %s" % (verb, handle, path))
  return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
  """Runs the cache action; returns the exit code."""
  # pylint: disable=g-import-not-at-top
  from hub_tf1.resolving import cache_admin
  if args.action == "list":
    return _list(args)
  if args.action == "prefetch":
    return _each(args.handles,
                 lambda h: cache_admin.prefetch(h, args.cache_dir),
                 "prefetched")
  return _each(args.handles,
               lambda h: cache_admin.remove(h, args.cache_dir), "removed")
