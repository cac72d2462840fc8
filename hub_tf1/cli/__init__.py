"""The `python -m hub_tf1` / `hub-tf1` command line.

Rules of this package:
* One file per subcommand (`<name>_command.py`), each with two functions:
  `add_arguments(parser: argparse.ArgumentParser) -> None` and
  `run(args: argparse.Namespace) -> int` (the process exit code).
* argparse is the one CLI convention of the project (no absl flags here), so
  the command can be called from tests in-process through `main(argv)`.
* `_COMMANDS` below is the only list of subcommands (a command is listed
  only once its file exists); a subcommand module is
  imported only when it is the one asked for, so `hub-tf1 cache list` does
  not pay for what `convert` imports.
"""

import argparse
import importlib
import sys
from typing import List, Optional

# name -> (module under hub_tf1.cli, one-line help).
_COMMANDS = {
    "cache": ("cache_command", "list, prefetch or remove cached modules"),
    "convert": ("convert_command", "write a module as a TF2 SavedModel"),
    "inspect": ("inspect_command", "show signatures, variables, assets, ops"),
    "scan": ("scan_command", "flag ops that reach files, network, processes"),
}


def _load(name: str):
  return importlib.import_module("hub_tf1.cli." + _COMMANDS[name][0])


def main(argv: Optional[List[str]] = None) -> int:
  """Runs one subcommand.

  Args:
    argv: the arguments after the program name (default: `sys.argv[1:]`).

  Returns:
    The exit code of the subcommand (2 for a usage error).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(
      prog="hub-tf1", description="Tools for TF1 Hub format modules.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  # Only the asked-for command's module is imported; the others get a stub
  # parser so that `--help` still lists them.
  wanted = next((a for a in argv if not a.startswith("-")), None)
  for name, (_, help_text) in _COMMANDS.items():
    command_parser = sub.add_parser(name, help=help_text)
    if name == wanted:
      module = _load(name)
      module.add_arguments(command_parser)
      command_parser.set_defaults(_run=module.run)
  args = parser.parse_args(argv)
  if not getattr(args, "_run", None):
    parser.print_help(sys.stderr)
    return 2
  return int(args._run(args))  # pylint: disable=protected-access
