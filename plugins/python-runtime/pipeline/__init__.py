"""Mystic's authoring API (`pipeline-ai` 2.8), written for pipewright's Python runtime.

A Mystic pipeline is a module that builds a graph at import time::

    from pipeline import Pipeline, Variable, entity, pipe

    @entity
    class Model:
        @pipe(run_once=True, on_startup=True)
        def load(self) -> None: ...

        @pipe
        def predict(self, n: int) -> str: ...

    with Pipeline() as builder:
        n = Variable(int, title="n")
        model = Model()
        model.load()
        builder.output(model.predict(n))

    my_pipeline = builder.get_pipeline()

Inside `with Pipeline()`, calling a `@pipe` records a node of the graph instead of running it,
and returns the `Variable` (or tuple of them) that will hold its result. `Graph.run(*inputs)`
then runs every node in the order it was recorded; a `run_once` pipe runs only the first time,
and an `on_startup` pipe runs once before the first run, whenever it was recorded. "Once" is
once per instance of the runtime: a warm instance keeps what its startup pipes loaded.

This package is pipewright's own implementation of that behaviour (no code of `pipeline-ai` is
in it). What it does not cover: `Directory`, `Stream` outputs, `InputSchema` inputs, pickled
(`pkl`) values, `onnx_to_pipeline`, and the cloud client (`pipeline.cloud`): importing those
names fails with a message saying so.
"""

from pipeline.objects.graph import (
    File,
    Graph,
    GraphNode,
    Pipeline,
    RunInputException,
    Variable,
    entity,
    pipe,
)

__all__ = ["Pipeline", "Variable", "entity", "pipe", "File", "Graph"]

RUNTIME = "pipewright"
"""Who implements this API; Mystic's package has no such name."""


def __getattr__(name):
    if name in ("Directory", "onnx_to_pipeline", "current_configuration"):
        raise ImportError(
            f"pipeline.{name} is not supported by pipewright's Python runtime"
        )
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
