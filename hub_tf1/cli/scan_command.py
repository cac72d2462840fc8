"""`hub-tf1 scan HANDLE [--json] [--policy default|strict]`.

Exit codes: 0 clean, 1 findings, 2 the module could not be read (reason on
stderr).  Nothing of the module runs.
"""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the scan arguments to `parser`."""
  parser.add_argument("handle", help="module path, URL or cached handle")
  parser.add_argument("--json", action="store_true", help="JSON output")
  parser.add_argument("--policy", choices=("default", "strict"),
                      default="default",
                      help="strict: exit 1 on findings (default too; kept "
                      "for symmetry with HUB_TF1_OP_POLICY)")


def run(args: argparse.Namespace) -> int:
  """Scans the module; returns the exit code (0 clean, 1 findings, 2 error)."""
  # pylint: disable=g-import-not-at-top
  from hub_tf1 import resolving
  from hub_tf1.format import module_files
  from hub_tf1.inspection import scan
  try:
    path = resolving.resolve(args.handle)
    module_files.read_module_def(path)
    saved_model = module_files.read_saved_model(path)
  except Exception as e:  # pylint: disable=broad-except
    print("hub-tf1 scan: cannot read module %s: %s" % (args.handle, e),
          file=sys.stderr)
    return 2
  findings = scan.scan_meta_graphs(saved_model.meta_graphs)
  if args.json:
    json.dump({"handle": args.handle,
               "findings": [f.as_json() for f in findings]}, sys.stdout,
              indent=1, sort_keys=True)
    print()
  else:
    for finding in findings:
      print(finding.describe())
    print("%d finding(s) in %s" % (len(findings), args.handle))
  return 1 if findings else 0
