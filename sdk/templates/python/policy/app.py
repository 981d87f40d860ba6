"""{{name}}: a validation policy, in Python.

The host calls `Policy.check` for every candidate version in a scope this policy is bound to,
and `About.describe` once when it loads the plugin. The rule itself lives in `rules.py`, free of
WIT types, so `python3 -m unittest` tests it without a build.

Edit `rules.py`, then `pipewright plugin test` (unit tests, then `fixtures/` through the built
component), `pipewright plugin push`, and bind it to a scope
(`PUT /v1/policy-bindings/namespace:NAME`).
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import about, policy
from wit_world.imports import types

import rules


class Policy(exports.Policy):
    def check(
        self,
        candidate: types.Pipeline,
        existing_versions: List[str],
        context: policy.PolicyContext,
    ) -> types.Pipeline:
        violations = rules.check_name(candidate.name)
        if violations:
            # A refusal is the `err` of the WIT result: every violation, with its stable code.
            raise Err([policy.Violation(v.code, v.field, v.message) for v in violations])
        return candidate


class About(exports.About):
    def describe(self) -> about.PolicyAbout:
        return about.PolicyAbout(rules.SUMMARY, list(rules.CODES))
