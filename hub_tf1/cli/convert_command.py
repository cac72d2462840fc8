"""`hub-tf1 convert HANDLE DIR [--tags T,...]`: a module as a TF2 SavedModel.

Writes what `hub_tf1.convert` writes (see hub_tf1/tf2/convert.py): a
SavedModel with the Reusable SavedModel interface and one serving signature
per module signature, loadable without hub_tf1.  Exit codes: 0 written,
2 not converted (reason on stderr; nothing is left at DIR).
"""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the convert arguments to `parser`."""
  parser.add_argument("handle", metavar="HANDLE",
                      help="module path, URL or cached handle")
  parser.add_argument("export_dir", metavar="DIR",
                      help="the SavedModel directory to create (must not "
                      "exist, or be empty)")
  parser.add_argument("--tags", default="",
                      help="comma-separated tags of the graph variant "
                      "(default: the variant without tags)")


def run(args: argparse.Namespace) -> int:
  """Converts the module; returns the exit code (0 done, 2 error)."""
  # pylint: disable=g-import-not-at-top
  from hub_tf1.tf2 import convert
  tags = {t.strip() for t in args.tags.split(",") if t.strip()}
  try:
    convert.convert(args.handle, args.export_dir, tags=tags or None)
  except Exception as e:  # pylint: disable=broad-except
    print("hub-tf1 convert: cannot convert module %s: %s: %s" % (
        args.handle, type(e).__name__, e), file=sys.stderr)
    return 2
  print("converted %s to %s" % (args.handle, args.export_dir))
  return 0
