"""{{name}}: the `{{type_id}}` pipeline type, in Python.

A pipeline of this type is a list of steps: a file `steps.txt`, one step per line, `#` starts a
comment. `validate` wants that file with at least one step; `scaffold` writes it; `launch` has no
service to start and says so. `Surfaces.served` offers the type on the ML Workbench's surface
(`acumos`) as well as on `/v1`; return `[]` to offer it on `/v1` only.

The rules live in `rules.py`, free of WIT types, so `python3 -m unittest` tests them without a
build. Edit them, then `pipewright plugin test` and `pipewright plugin push`.
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

import rules


class PipelineType(exports.PipelineType):
    def describe(self) -> types.TypeInfo:
        return types.TypeInfo(
            id=rules.TYPE_ID,
            display_name="{{display_name}}",
            content_kinds=["text/plain"],
            default_files=[rules.STEPS_FILE],
        )

    def validate(self, pipeline: types.Pipeline, content: List[types.File]) -> List[types.Diagnostic]:
        files = {f.path: bytes(f.contents).decode("utf-8", "replace") for f in content}
        return [
            types.Diagnostic(types.Severity.ERROR, d.code, d.field, d.message)
            for d in rules.validate_steps(files)
        ]

    def scaffold(self, pipeline: types.Pipeline) -> List[types.File]:
        text = rules.starting_steps(pipeline.name)
        return [types.File(rules.STEPS_FILE, text.encode("utf-8"))]

    def launch(self, context: types.LaunchContext) -> types.LaunchInfo:
        raise Err(
            types.PluginError(
                "unsupported", f"`{rules.TYPE_ID}` pipelines have no service to launch"
            )
        )


class Surfaces(exports.Surfaces):
    def served(self) -> List[str]:
        return ["acumos"]
