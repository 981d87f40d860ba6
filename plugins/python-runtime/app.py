"""pipewright's Python runtime: one component (world `pipewright:pipeline/runnable@0.1.0`) that
runs any Mystic pipeline directory, so a new Python pipeline needs no compile of its own.

A run sees the pipeline's files read-only at `/pipeline`, its manifest among them as
`pipeline.json` (what `pipewright pipeline push` sent: `pipeline.yaml` as JSON). Its
`pipeline_graph` (`module:attribute`) names the graph: the module is imported from `/pipeline`
(with the bundled requirements of `/pipeline/__pypackages__` after it) the first time the
instance runs, which builds the graph; then its `on_startup` pipes run. The host keeps the
instance warm between runs of the same version, so that happens once per instance, as in a
Mystic container.

Values: the runnable world's string, integer, float, boolean, dictionary and array (JSON
text), and file (a path: inputs under `/inputs`, outputs written under `/outputs`). Output `i`
is named `output_<i>`; inputs are named as the host's manifest says, and given to the graph in
order.

Errors come back as the world's `run-error` with Mystic's kinds as codes: `input_error` (the
inputs do not fit), `pipeline_loading` (the module or graph could not be loaded),
`startup_error` (an `on_startup` pipe failed) and `pipeline_error` (a pipe raised: the message is
the exception's `repr`, its traceback goes to stderr, which is the run's log).

`describe`: a run whose only input is named `pipewright:describe` loads the graph and answers
one dictionary, `{"inputs": [{name, type, title, description}], "outputs": [{name, type}],
"python": VERSION}`, without running any pipe: what the host records at push.
"""

import importlib
import json
import os
import platform
import shutil
import sys
import traceback

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import types

import pipeline
from pipeline.objects.graph import File, RunInputException, type_name

PIPELINE_DIR = "/pipeline"
BUNDLED_PACKAGES = "/pipeline/__pypackages__"
OUTPUTS_DIR = "/outputs"
DESCRIBE = "pipewright:describe"


class Failure(Exception):
    """A run's failure, with the Mystic error kind it is reported as."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Loaded:
    """The graph of this instance's pipeline, imported once."""

    graph = None

    @classmethod
    def get(cls):
        if cls.graph is None:
            cls.graph = load_graph()
        return cls.graph


def load_graph():
    try:
        with open(os.path.join(PIPELINE_DIR, "pipeline.json")) as manifest:
            reference = json.load(manifest).get("pipeline_graph")
    except (OSError, ValueError) as error:
        raise Failure("pipeline_loading", f"reading the manifest: {error}")
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise Failure(
            "pipeline_loading",
            "`pipeline_graph` must be `module:attribute`, "
            f"as `pipeline container init` writes it; got {reference!r}",
        )
    module_name, attribute = reference.split(":")
    for path in (BUNDLED_PACKAGES, PIPELINE_DIR):
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        os.chdir(PIPELINE_DIR)
    except OSError:
        pass
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        traceback.print_exc()
        raise Failure("pipeline_loading", f"importing {module_name}: {error!r}")
    graph = getattr(module, attribute, None)
    if not isinstance(graph, pipeline.Graph):
        raise Failure(
            "pipeline_loading",
            f"{module_name} has no pipeline named {attribute} "
            "(`builder.get_pipeline()` assigned to it)",
        )
    return graph


def describe(graph):
    """What the host records of a graph: its ports, typed; and which Python runs it."""
    inputs, titles = [], set()
    for index, variable in enumerate(graph.inputs):
        kind = type_name(variable.type_class)
        if kind is None:
            raise Failure(
                "pipeline_loading",
                f"input {index} is a {variable.type_class!r}; this runtime takes "
                "str, int, float, bool, dict, list and File",
            )
        name = variable.title if variable.title and variable.title not in titles else None
        name = name or f"input_{index}"
        titles.add(name)
        inputs.append(
            {"name": name, "type": kind, "title": variable.title,
             "description": variable.description}
        )
    outputs = []
    for index, variable in enumerate(graph.outputs):
        kind = type_name(variable.type_class)
        if kind is None:
            raise Failure(
                "pipeline_loading",
                f"output {index} is a {variable.type_class!r}; this runtime gives "
                "str, int, float, bool, dict, list and File",
            )
        outputs.append({"name": f"output_{index}", "type": kind})
    return {"inputs": inputs, "outputs": outputs, "python": platform.python_version()}


def python_value(value):
    """A world value as the graph takes it."""
    if isinstance(value, (types.Value_Dictionary, types.Value_Array)):
        return json.loads(value.value)
    if isinstance(value, types.Value_File):
        return File(path=value.value)
    return value.value


def world_value(index, value):
    """A graph's output as a world value."""
    if isinstance(value, bool):
        return types.Value_Boolean(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise Failure("pipeline_error", f"output {index} ({value}) exceeds 64 bits")
        return types.Value_Integer(value)
    if isinstance(value, float):
        return types.Value_Float(value)
    if isinstance(value, str):
        return types.Value_String(value)
    if isinstance(value, File):
        return types.Value_File(output_file(index, value))
    if isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            raise Failure(
                "pipeline_error",
                f"output {index} is not JSON; pickled values are not supported here",
            )
        if isinstance(value, dict):
            return types.Value_Dictionary(text)
        return types.Value_Array(text)
    raise Failure(
        "pipeline_error",
        f"output {index} is a {type(value).__name__}; this runtime gives "
        "str, int, float, bool, dict, list and File",
    )


def output_file(index, file):
    """The path under /outputs of a returned file: itself, or a copy of it there."""
    if file.path is None:
        raise Failure("pipeline_error", f"output {index} is a File without a path")
    path = os.path.abspath(str(file.path))
    if os.path.dirname(path) == OUTPUTS_DIR:
        return path
    target = os.path.join(OUTPUTS_DIR, os.path.basename(path))
    try:
        shutil.copyfile(path, target)
    except OSError as error:
        raise Failure(
            "pipeline_error",
            f"output {index} ({path}) could not be placed under {OUTPUTS_DIR}: {error}",
        )
    return target


def run_graph(inputs):
    graph = Loaded.get()
    if len(inputs) == 1 and inputs[0].name == DESCRIBE:
        text = json.dumps(describe(graph))
        return [types.NamedValue(DESCRIBE, types.Value_Dictionary(text))]
    arguments = [python_value(named.value) for named in inputs]
    if not graph._has_run_startup:
        try:
            graph.startup()
        except RunInputException:
            raise
        except Exception as error:
            traceback.print_exc()
            raise Failure("startup_error", repr(error))
    try:
        values = graph.run(*arguments)
    except (RunInputException, Failure):
        raise
    except Exception as error:
        traceback.print_exc()
        raise Failure("pipeline_error", repr(error))
    return [
        types.NamedValue(f"output_{index}", world_value(index, value))
        for index, value in enumerate(values)
    ]


class Run(exports.Run):
    def run(self, inputs):
        try:
            return run_graph(inputs)
        except RunInputException as error:
            raise Err(types.RunError("input_error", error.message))
        except Failure as failure:
            raise Err(types.RunError(failure.code, failure.message))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
