"""`pipeline.objects`, as Mystic's pipelines import it: the same names as `pipeline`."""

from pipeline.objects.graph import File, Graph, GraphNode, Pipeline, Variable, entity, pipe

__all__ = ["Pipeline", "Graph", "GraphNode", "Variable", "pipe", "entity", "File"]


def __getattr__(name):
    if name in ("Directory", "Stream", "InputSchema", "InputField", "onnx_to_pipeline"):
        raise ImportError(
            f"pipeline.objects.{name} is not supported by pipewright's Python runtime"
        )
    raise AttributeError(f"module 'pipeline.objects' has no attribute {name!r}")
