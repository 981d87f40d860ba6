"""The graph a Mystic pipeline builds, and how it runs (see the `pipeline` package's doc).

Building: `Pipeline` is a context manager holding the graph being built (one at a time, as in
Mystic: the builder is module-level state). `Variable(...)` made inside it is an input of the
graph, in the order made; `File(...)` made inside it is a value known at build time (a file the
startup pipes may read). A `@pipe` called inside it records a `GraphNode`: the function, the
variables it reads, the variables it writes (one per element of a `Tuple[...]` return
annotation, else one). An `@entity` instance passed as `self` is kept with the node.

Running: `Graph.run(*inputs)` checks the inputs' number and types, runs the startup pipes once
(see `Graph.startup`), then every node in recorded order, skipping a `run_once` pipe that has
run, and returns the values of the variables given to `builder.output(...)`, in that order.
"""

import pathlib
import typing

# Python types a Variable may have, by the name the runnable world's values carry.
VALUE_TYPES = {
    str: "string",
    int: "integer",
    float: "float",
    bool: "boolean",
    dict: "dictionary",
    list: "array",
}


class RunInputException(Exception):
    """The inputs do not fit the graph (Mystic's `input_error`)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def type_name(type_class):
    """The runnable world's name of a Variable's type, or None when it has none here."""
    if isinstance(type_class, type) and issubclass(type_class, File):
        return "file"
    origin = typing.get_origin(type_class)
    if origin is not None:
        type_class = origin
    return VALUE_TYPES.get(type_class)


class Variable:
    """A value of the graph: an input (made inside `with Pipeline()`), or a pipe's output."""

    _CONSTRAINTS = (
        "choices", "gt", "ge", "lt", "le", "multiple_of", "allow_inf_nan",
        "max_digits", "decimal_places", "min_length", "max_length",
    )

    def __init__(
        self,
        type_class,
        *,
        default=None,
        is_input=True,
        is_output=False,
        local_id=None,
        title=None,
        description=None,
        examples=None,
        gt=None,
        ge=None,
        lt=None,
        le=None,
        multiple_of=None,
        allow_inf_nan=None,
        max_digits=None,
        decimal_places=None,
        min_length=None,
        max_length=None,
        choices=None,
        allow_out_of_context_creation=False,
    ):
        self.type_class = type_class
        self.default = default
        self.is_input = is_input
        self.is_output = is_output
        self.title = title
        self.description = description
        self.examples = examples
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        self.multiple_of = multiple_of
        self.allow_inf_nan = allow_inf_nan
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.min_length = min_length
        self.max_length = max_length
        self.choices = choices
        graph = Pipeline._building
        if graph is None and not allow_out_of_context_creation:
            raise Exception("Cant add a variable when not defining a pipeline")
        if graph is not None:
            graph.variables.append(self)
        self.local_id = local_id or f"v{id(self):x}"

    def validate_variable(self, value):
        """Raises TypeError when `value` breaks one of the variable's constraints."""
        if self.choices is not None and value not in self.choices:
            raise TypeError(f"Value is not in the choices of {self.choices}")
        checks = [
            (self.gt, lambda bound: value > bound, "greater than"),
            (self.ge, lambda bound: value >= bound, "greater than or equal to"),
            (self.lt, lambda bound: value < bound, "less than"),
            (self.le, lambda bound: value <= bound, "less than or equal to"),
        ]
        for bound, holds, words in checks:
            if bound is not None and not holds(bound):
                raise TypeError(f"Value is not {words} {bound}")
        if self.multiple_of is not None and value % self.multiple_of != 0:
            raise TypeError(f"Value is not a multiple of {self.multiple_of}")
        if self.allow_inf_nan is False and isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise TypeError("Value is not allowed to be infinity or nan")
        if self.max_digits is not None and len(str(value)) > self.max_digits:
            raise TypeError(f"Value has more than {self.max_digits} digits")
        if self.decimal_places is not None:
            decimals = str(value).partition(".")[2]
            if len(decimals) > self.decimal_places:
                raise TypeError(
                    f"Value has more than {self.decimal_places} decimal places"
                )
        if self.min_length is not None and len(str(value)) < self.min_length:
            raise TypeError(f"Value has less than {self.min_length} characters")
        if self.max_length is not None and len(str(value)) > self.max_length:
            raise TypeError(f"Value has more than {self.max_length} characters")


class File(Variable):
    """A file: an input of type `File`, a file a pipe returns, or one known at build time.

    `path` is a `pathlib.Path`. An input file is read-only under `/inputs`; a file a pipe
    returns must be readable (write new ones under `/outputs`: nothing else is writable).
    `url` is kept as given: this runtime has no network, so a file by URL cannot be read.
    """

    def __init__(
        self,
        *,
        path=None,
        remote_id=None,
        url=None,
        title=None,
        allow_out_of_context_creation=True,
        local_id=None,
    ):
        super().__init__(
            type(self),
            is_input=False,
            title=title,
            local_id=local_id,
            allow_out_of_context_creation=allow_out_of_context_creation,
        )
        self.path = pathlib.Path(path) if path is not None else None
        self.remote_id = remote_id
        self.url = url

    def save(self, path):
        """Copies the file to `path`."""
        if self.path is None:
            raise Exception("This file has no path (a file by URL cannot be read here)")
        target = pathlib.Path(path)
        if self.path.is_dir():
            raise Exception("Path is a directory")
        target.write_bytes(self.path.read_bytes())

    def __repr__(self):
        return f"File(path={str(self.path)!r})" if self.path else f"File(url={self.url!r})"


class Function:
    """A `@pipe` function as the graph holds it: the function, its flags, and the entity
    instance it is a method of (found when first recorded with one)."""

    def __init__(self, function, run_once, on_startup):
        self.function = function
        self.name = function.__name__
        self.run_once = run_once
        self.on_startup = on_startup
        self.has_run = False
        self.class_instance = None

    def call(self, arguments):
        if self.class_instance is not None:
            return self.function(self.class_instance, *arguments)
        return self.function(*arguments)


class GraphNode:
    """One recorded call of a pipe: what it reads and what it writes."""

    def __init__(self, function, inputs, outputs):
        self.function = function
        self.inputs = inputs
        self.outputs = outputs


class Graph:
    """A built pipeline: its variables (inputs first, in the order made), nodes and outputs."""

    def __init__(self, *, name=""):
        self.name = name
        self.variables = []
        self.functions = []
        self.nodes = []
        self.outputs = []
        self.models = []
        self._has_run_startup = False

    @property
    def inputs(self):
        """The variables a run gives values to, in order."""
        return [v for v in self.variables if v.is_input]

    def startup(self):
        """Runs every `on_startup` pipe once, before the first run, with the files known at
        build time as its arguments (a startup pipe reads nothing else). Mystic's `_startup`."""
        if self._has_run_startup:
            return
        for node in self.nodes:
            function = node.function
            if not function.on_startup or (function.run_once and function.has_run):
                continue
            arguments = []
            for variable in node.inputs:
                if not isinstance(variable, File):
                    raise RunInputException(
                        f"the startup pipe {function.name} reads a value that is not a "
                        "File known when the pipeline is built"
                    )
                arguments.append(variable)
            function.call(arguments)
            if function.run_once:
                function.has_run = True
        self._has_run_startup = True

    _startup = startup

    def run(self, *inputs):
        """Runs the graph once with `inputs` (one per input variable, in order); returns the
        output values in the order given to `builder.output`."""
        declared = self.inputs
        if len(inputs) != len(declared):
            raise RunInputException(
                "Mismatch of number of inputs, expecting %u got %s"
                % (len(declared), len(inputs))
            )
        values = {}
        for variable in self.variables:
            if isinstance(variable, File) and not variable.is_input:
                values[variable.local_id] = variable
        for variable, value in zip(declared, inputs):
            values[variable.local_id] = checked_input(variable, value)
        self.startup()
        for node in self.nodes:
            function = node.function
            if function.run_once and function.has_run:
                continue
            arguments = [values[v.local_id] for v in node.inputs]
            result = function.call(arguments)
            if len(node.outputs) > 1:
                if not isinstance(result, (tuple, list)) or len(result) != len(node.outputs):
                    raise Exception(
                        f"{function.name} returned {result!r}, not "
                        f"{len(node.outputs)} values as its annotation says"
                    )
                for variable, value in zip(node.outputs, result):
                    values[variable.local_id] = value
            else:
                values[node.outputs[0].local_id] = result
            function.has_run = True
        missing = [v for v in self.outputs if v.local_id not in values]
        if missing:
            raise Exception(
                "an output was never computed (it comes from a run_once pipe that ran before)"
            )
        return [values[v.local_id] for v in self.outputs]


def checked_input(variable, value):
    """`value` as `variable` takes it: an int for a float is widened; anything else of
    another type, or breaking a constraint, is an input error."""
    expected = variable.type_class
    if isinstance(expected, type) and issubclass(expected, File):
        if not isinstance(value, File):
            raise RunInputException(
                f"Input type mismatch, expected a file got {type(value).__name__}"
            )
        return value
    origin = typing.get_origin(expected) or expected
    if isinstance(origin, type) and not isinstance(value, origin):
        if origin is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        else:
            raise RunInputException(
                "Input type mismatch, expected %s got %s" % (expected, value.__class__)
            )
    try:
        variable.validate_variable(value)
    except TypeError as error:
        name = variable.title or "input"
        raise RunInputException(f"{name}: {error}") from None
    return value


class Pipeline:
    """`with Pipeline() as builder:` builds a graph; `builder.get_pipeline()` gives it."""

    _building = None
    _current_pipeline = None
    _pipeline_context_active = False

    def __init__(self, name=""):
        self.name = name

    def __enter__(self):
        graph = Graph(name=self.name)
        Pipeline._building = graph
        Pipeline._current_pipeline = graph
        Pipeline._pipeline_context_active = True
        return self

    def __exit__(self, kind, value, traceback):
        Pipeline._building = None
        Pipeline._pipeline_context_active = False
        return False

    def output(self, *outputs):
        graph = Pipeline._current_pipeline
        for variable in outputs:
            if not isinstance(variable, Variable) or variable not in graph.variables:
                raise Exception(f"{variable!r} is not a variable of this pipeline")
            variable.is_output = True
            graph.outputs.append(variable)

    def add_variables(self, *variables):
        """Kept for Mystic's API: variables join the graph when made."""

    def get_pipeline(self):
        return Pipeline._current_pipeline


def pipe(function=None, *, run_once=False, on_startup=False):
    """Marks a function (or an `@entity` method) as a step of the graph.

    Called inside `with Pipeline()`, it records a node and returns its output variable(s);
    outside, it is a plain call. It needs a return annotation (the output's type).
    """
    if function is None:
        return lambda f: pipe(f, run_once=run_once, on_startup=on_startup)
    recorded = Function(function, run_once, on_startup)

    def step(*args, **kwargs):
        graph = Pipeline._building
        if graph is None:
            return function(*args, **kwargs)
        if kwargs:
            raise Exception(
                f"{function.__name__}: pass pipeline variables by position when building"
            )
        if "return" not in function.__annotations__:
            raise Exception(
                "You must define an output type for a pipeline function. "
                "e.g. def my_func(...) -> float:"
            )
        inputs = []
        for argument in args:
            if isinstance(argument, Variable):
                inputs.append(argument)
            elif getattr(argument, "__entity__", False):
                if recorded.class_instance is None:
                    recorded.class_instance = argument
            else:
                raise Exception(
                    "Can only input pipeline variables to a function when defining a "
                    f"graph, got: {type(argument)}"
                )
        returned = function.__annotations__["return"]
        if typing.get_origin(returned) is tuple:
            outputs = tuple(
                Variable(t, is_input=False) for t in typing.get_args(returned)
            )
        else:
            outputs = (Variable(returned, is_input=False),)
        if recorded not in graph.functions:
            graph.functions.append(recorded)
        graph.nodes.append(GraphNode(recorded, inputs, list(outputs)))
        return outputs if len(outputs) > 1 else outputs[0]

    step.__name__ = function.__name__
    step.__qualname__ = getattr(function, "__qualname__", function.__name__)
    step.__doc__ = function.__doc__
    step.__wrapped__ = function
    step.__pipe__ = recorded
    return step


def entity(model_class=None):
    """Marks a class whose instances hold a pipeline's state (a loaded model, say); its
    methods decorated with `@pipe` become steps that get the instance as `self`."""

    def mark(cls):
        cls.__entity__ = True
        return cls

    if model_class is None:
        return mark
    return mark(model_class)
