"""pytest glue for absltest/tf.test based tests (the modern-TF run).

Under Bazel each test file runs through `absltest.main()`, which parses the
absl flags.  pytest never calls it, so without this the first
`self.create_tempdir()` fails with UnparsedFlagAccessError.  Also drops
`tf.test.TestCase.test_session`, a helper pytest would report as a skipped
test in every TensorFlow test class.
"""

from absl import flags


def pytest_configure(config) -> None:
  del config  # Unused.
  if not flags.FLAGS.is_parsed():
    # Defaults only: --test_tmpdir falls back to $TEST_TMPDIR or the system
    # temp directory, as it does for a plain `python foo_test.py` run.
    flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(session, config, items) -> None:
  del session, config  # Unused.
  items[:] = [item for item in items if not _is_tf_test_session(item)]


def _is_tf_test_session(item) -> bool:
  function = getattr(item, "function", None)
  return (item.name == "test_session" and
          getattr(function, "__qualname__", "") ==
          "TensorFlowTestCase.test_session")
