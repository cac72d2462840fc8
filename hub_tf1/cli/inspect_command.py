"""`hub-tf1 inspect HANDLE [--json]`: what a module holds, without running it.

Output: readable tables, or with --json the schema documented in
hub_tf1/inspection/inspect.py.  Exit codes: 0 done, 2 the module could not be
read (reason on stderr).
"""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the inspect arguments to `parser`."""
  parser.add_argument("handle", help="module path, URL or cached handle")
  parser.add_argument("--json", action="store_true",
                      help="JSON output (schema hub_tf1.inspect/1)")


def run(args: argparse.Namespace) -> int:
  """Describes the module; returns the exit code (0 done, 2 error)."""
  # pylint: disable=g-import-not-at-top
  from hub_tf1 import resolving
  from hub_tf1.inspection import inspect
  try:
    path = resolving.resolve(args.handle)
    description = inspect.describe_module(path, handle=args.handle)
  except Exception as e:  # pylint: disable=broad-except
    print("hub-tf1 inspect: cannot read module %s: %s" % (args.handle, e),
          file=sys.stderr)
    return 2
  if args.json:
    json.dump(description, sys.stdout, indent=1, sort_keys=True)
    print()
  else:
    print(inspect.format_text(description))
  return 0
