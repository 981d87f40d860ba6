"""Unit tests of the rules, run by `pipewright plugin test` (`python3 -m unittest`)."""

import unittest

import rules


class ValidateSteps(unittest.TestCase):
    def test_the_scaffold_is_valid(self):
        files = {rules.STEPS_FILE: rules.starting_steps("demo")}
        self.assertEqual(rules.validate_steps(files), [])

    def test_a_missing_or_empty_steps_file_is_refused(self):
        self.assertEqual([f.code for f in rules.validate_steps({})], ["missing-steps"])
        only_a_comment = {rules.STEPS_FILE: "# only a comment\n"}
        self.assertEqual([f.code for f in rules.validate_steps(only_a_comment)], ["no-steps"])


if __name__ == "__main__":
    unittest.main()
