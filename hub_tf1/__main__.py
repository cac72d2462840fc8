"""`python -m hub_tf1 COMMAND ...`: see `hub_tf1/cli/__init__.py`."""

import sys

from hub_tf1 import cli

if __name__ == "__main__":
  sys.exit(cli.main())
