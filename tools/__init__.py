"""Developer and test tooling of this repository, not the library.

Importable so that Python tools run as `python -m tools.<name>` from the
repository root, e.g. `python -m tools.local_cluster` (a local
parameter-server cluster launcher; see its docstring).  The shell scripts
here (bootstrap.sh, run_demo.sh, test.sh) and tools/summarize_tests.py are run
as files, as before.  Nothing in hub_tf1 or estimator_integration imports
this package.
"""
