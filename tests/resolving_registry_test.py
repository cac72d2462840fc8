"""The resolver registry: custom handle schemes end to end, bad registrations.

Every test that registers something unregisters it in a cleanup, so the
registry is the built-in one again after each test.
"""

import os

from absl.testing import absltest

import hub_tf1
from hub_tf1 import errors as hub_errors
from hub_tf1 import resolving
from hub_tf1.resolving import resolver
from tests import resolving_child_lib

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REF = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules")
_MODULE = "text_embedding_nnlm"


class RegistryTest(absltest.TestCase):

  def register(self, key, fn, description=""):
    resolving.register_resolver(key, fn, description)
    self.addCleanup(resolving.unregister_resolver, key)

  def test_custom_scheme_to_a_local_module_dir_end_to_end(self):
    calls = []

    def resolve_mymods(handle):
      calls.append(handle)
      return os.path.join(_REF, handle[len("mymods://"):])
    self.register("mymods", resolve_mymods, "a mymods://<name> handle")
    handle = "mymods://" + _MODULE
    self.assertEqual(resolving.resolve(handle), os.path.join(_REF, _MODULE))
    self.assertEqual(
        hub_tf1.load_module_spec(handle).get_signature_names(), ["default"])
    outputs = resolving_child_lib.module_outputs
    self.assertEqual(outputs(handle), outputs(os.path.join(_REF, _MODULE)))
    self.assertEqual(calls, [handle] * 3)
    # The scheme is exact, as for the built-in ones.
    with self.assertRaises(resolving.UnsupportedHandleError):
      resolving.resolve("MYMODS://" + _MODULE)
    self.assertLen(calls, 3)

  def test_accepted_forms_follow_the_registry(self):
    before = resolving.accepted_forms()
    self.assertEqual(before, resolver.ACCEPTED_FORMS)
    for form in ("file://", "http://", "https://", "gs://", ".tar.gz"):
      self.assertTrue(any(form in f for f in before), form)
    resolving.register_resolver("mymods", lambda h: h)
    try:
      forms = resolving.accepted_forms()
      self.assertIn("a mymods:// handle", forms)
      self.assertEqual(len(forms), len(before) + 1)
      with self.assertRaises(resolving.UnsupportedHandleError) as cm:
        resolving.resolve("ftp://example.com/m")
      self.assertIn("a mymods:// handle", str(cm.exception))
    finally:
      resolving.unregister_resolver("mymods")
    self.assertEqual(resolving.accepted_forms(), before)
    with self.assertRaises(resolving.UnsupportedHandleError) as cm:
      resolving.resolve("mymods://" + _MODULE)
    self.assertNotIn("mymods:// handle", str(cm.exception))

  def test_newest_resolver_is_consulted_first(self):
    local = os.path.join(_REF, _MODULE)
    # Takes over some https:// handles before the built-in downloader.
    self.register(lambda h: h.startswith("https://mirror.invalid/"),
                  lambda h: local, "https://mirror.invalid/ handles")
    self.assertEqual(resolving.resolve("https://mirror.invalid/m/1"), local)
    self.register(lambda h: h.endswith("/1"), lambda h: "/elsewhere",
                  "handles ending in /1")
    self.assertEqual(resolving.resolve("https://mirror.invalid/m/1"),
                     "/elsewhere")

  def test_resolver_errors_pass_unchanged(self):

    def failing(handle):
      raise IOError("cannot reach %s" % handle)
    self.register("broken", failing)
    with self.assertRaisesRegex(IOError, "^cannot reach broken://x$"):
      resolving.resolve("broken://x")

  def test_resolver_must_return_a_path(self):
    self.register("nothing", lambda h: None)
    with self.assertRaisesRegex(TypeError, "returned None"):
      resolving.resolve("nothing://x")

  def test_bad_registrations(self):
    fn = lambda h: h
    cases = [
        (("myhub://", fn), "name only"),
        (("1hub", fn), "Bad URL scheme"),
        (("", fn), "Bad URL scheme"),
        (("my hub", fn), "Bad URL scheme"),
        (("myhub", "not callable"), "must be callable"),
        ((42, fn), "must be a URL scheme or a callable"),
        ((lambda h: True, fn), "needs a description"),
    ]
    for args, message in cases:
      with self.subTest(args=args):
        with self.assertRaisesRegex(resolving.ResolverRegistrationError,
                                    message):
          resolving.register_resolver(*args)
    forms = resolving.accepted_forms()
    self.register("myhub", fn)
    with self.assertRaisesRegex(resolving.ResolverRegistrationError,
                                "registered already") as cm:
      resolving.register_resolver("myhub", lambda h: "/other")
    self.assertIsInstance(cm.exception, ValueError)
    self.assertIsInstance(cm.exception, hub_errors.Error)
    self.assertEqual(resolving.resolve("myhub://x"), "myhub://x")
    self.assertEqual(len(resolving.accepted_forms()), len(forms) + 1)
    with self.assertRaisesRegex(resolving.ResolverRegistrationError,
                                "No resolver is registered for 'nohub'"):
      resolving.unregister_resolver("nohub")


if __name__ == "__main__":
  absltest.main()
