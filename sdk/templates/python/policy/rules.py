"""The rule of {{name}}: pipeline names must be at least `MIN_NAME_LENGTH` characters long
(violation code `name-too-short`, field `name`). Plain Python, unit-tested in `test_rules.py`."""

from dataclasses import dataclass
from typing import List, Optional

MIN_NAME_LENGTH = 4
SUMMARY = f"pipeline names have at least {MIN_NAME_LENGTH} characters"
CODES = ("name-too-short",)


@dataclass
class Violation:
    code: str
    field: Optional[str]
    message: str


def check_name(name: str) -> List[Violation]:
    if len(name) < MIN_NAME_LENGTH:
        return [
            Violation(
                "name-too-short",
                "name",
                f"name `{name}` is shorter than {MIN_NAME_LENGTH} characters",
            )
        ]
    return []
