"""`python -m examples.estimator_demo [FLAGS]`: runs the demo (demo.py).

demo.py runs as the `__main__` module, exactly as
`python -m examples.estimator_demo.demo` would: same flags, --help text and
exit code.
"""

import runpy

if __name__ == "__main__":
  runpy.run_module("examples.estimator_demo.demo", run_name="__main__",
                   alter_sys=True)
