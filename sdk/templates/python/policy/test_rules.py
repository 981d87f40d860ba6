"""Unit tests of the rule, run by `pipewright plugin test` (`python3 -m unittest`)."""

import unittest

import rules


class CheckName(unittest.TestCase):
    def test_long_enough_names_pass(self):
        self.assertEqual(rules.check_name("churn"), [])

    def test_short_names_are_refused(self):
        self.assertEqual([v.code for v in rules.check_name("abc")], ["name-too-short"])


if __name__ == "__main__":
    unittest.main()
