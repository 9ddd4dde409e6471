"""The tables tools on plain CPython (`PYTHONPATH=../../guest-sdk/python python -m unittest`),
through `default_plugin.call` so the JSON path the host uses is covered too."""

import unittest

import app
from capsule_sdk import CallError, default_plugin


def call(name: str, **arguments: object):
    return default_plugin.call(name, arguments)


class TablesTest(unittest.TestCase):
    def test_csv_to_markdown_pads_escapes_and_aligns_numbers(self) -> None:
        out = call("csv_to_markdown", csv='name,qty\n"pear, green",10\na|b,3\n').text()
        self.assertEqual(
            out,
            "| name        | qty |\n"
            "| ----------- | --: |\n"
            "| pear, green |  10 |\n"
            "| a\\|b        |   3 |",
        )

    def test_csv_options(self) -> None:
        out = call("csv_to_markdown", csv="1\t2\n", delimiter="\\t", header=False, align="center")
        self.assertEqual(
            out.text(), "| Column 1 | Column 2 |\n| :------: | :------: |\n|    1     |    2     |"
        )

    def test_markdown_round_trip(self) -> None:
        markdown = "Intro text.\n\n| a | b |\n|:--|--:|\n| x\\|y | line<br>two |\n\nAfter."
        csv_text = call("markdown_to_csv", markdown=markdown).text()
        self.assertEqual(csv_text, 'a,b\nx|y,"line\ntwo"\n')
        back = call("csv_to_markdown", csv=csv_text, align="none").text()
        self.assertIn("| x\\|y | line<br>two |", back)

    def test_stats(self) -> None:
        stats = call(
            "table_stats",
            table="| item | price |\n|---|---|\n| a | 1,000.5 |\n| b | 0.1 |\n| c | n/a |\n| d | |",
        )
        self.assertEqual(stats.structured["rows"], 4)
        price = stats.structured["columns"][1]
        self.assertEqual(price["values"], 3)
        self.assertEqual(price["numeric"], 2)
        self.assertEqual(price["sum"], 1000.6)
        self.assertEqual(price["min"], 0.1)
        self.assertEqual(stats.structured["columns"][0]["mean"], None)

    def test_sort(self) -> None:
        out = call("sort_table", table="n,q\na,3\nb,10\nc,\nd,-1\n", column="q", descending=True)
        self.assertEqual(out.text(), "n,q\nb,10\na,3\nd,-1\nc,\n")
        out = call("sort_table", table="n,q\nb,1\nA,2\n", column="1")
        self.assertEqual(out.text(), "n,q\nA,2\nb,1\n")

    def test_errors(self) -> None:
        cases = [
            (
                "csv_to_markdown",
                {"csv": "a,b\n1,2,3\n"},
                "failed",
                "row 2 has 3 cells but row 1 has 2",
            ),
            ("csv_to_markdown", {"csv": ""}, "failed", "the CSV has no rows"),
            (
                "csv_to_markdown",
                {"csv": "a", "delimiter": ";;"},
                "invalid-arguments",
                "delimiter must be one character",
            ),
            ("markdown_to_csv", {"markdown": "no table here"}, "failed", "no Markdown table found"),
            (
                "markdown_to_csv",
                {"markdown": "|a|b|\n|-|-|\n|1|\n"},
                "failed",
                "line 3 has 1 cells but the header has 2",
            ),
            (
                "sort_table",
                {"table": "a\n1\n", "column": "z"},
                "invalid-arguments",
                "no column 'z'; the columns are 'a'",
            ),
            (
                "sort_table",
                {"table": "a\nx\n", "column": "a", "numeric": True},
                "invalid-arguments",
                "not numbers",
            ),
        ]
        for name, arguments, kind, needle in cases:
            with self.subTest(name=name, arguments=arguments):
                with self.assertRaises(CallError) as raised:
                    default_plugin.call(name, arguments)
                self.assertEqual(raised.exception.kind, kind)
                self.assertIn(needle, raised.exception.message)

    def test_exports_the_tools_class(self) -> None:
        self.assertTrue(hasattr(app, "Tools"))


if __name__ == "__main__":
    unittest.main()
