"""Unit tests on plain CPython, no wasm needed: `python -m unittest`."""

import unittest

import app  # noqa: F401  (registers the tools)
from capsule_sdk import CallError, default_plugin


class GreetTest(unittest.TestCase):
    def test_greets(self) -> None:
        out = default_plugin.call("greet", {"name": "Ada", "excited": True})
        self.assertEqual(out.text(), "Hello, Ada!")

    def test_rejects_an_empty_name(self) -> None:
        with self.assertRaises(CallError) as raised:
            default_plugin.call("greet", {"name": " "})
        self.assertEqual(raised.exception.kind, "invalid-arguments")


if __name__ == "__main__":
    unittest.main()
