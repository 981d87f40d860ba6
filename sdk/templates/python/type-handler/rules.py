"""The rules of the `{{type_id}}` type, in plain Python (unit-tested in `test_rules.py`):
`steps.txt` must exist (`missing-steps`) and hold at least one step (`no-steps`)."""

from dataclasses import dataclass
from typing import Dict, List, Optional

TYPE_ID = "{{type_id}}"
STEPS_FILE = "steps.txt"


@dataclass
class Finding:
    code: str
    field: Optional[str]
    message: str


def validate_steps(files: Dict[str, str]) -> List[Finding]:
    """`files` maps each path of the version's content to its text."""
    steps = files.get(STEPS_FILE)
    if steps is None:
        return [Finding("missing-steps", None, f"the content holds no `{STEPS_FILE}`")]
    lines = (line.strip() for line in steps.splitlines())
    if not any(line and not line.startswith("#") for line in lines):
        return [Finding("no-steps", STEPS_FILE, f"`{STEPS_FILE}` lists no step")]
    return []


def starting_steps(name: str) -> str:
    """What a new pipeline called `name` starts with."""
    return f"# The steps of {name}, one per line.\nfetch the data\n"
