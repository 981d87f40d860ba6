//! Python pipelines on the Python runtime, end to end: the directory Mystic's own CLI writes
//! (`pipeline container init`), pushed untouched with `pipewright pipeline push` and run by the
//! real client (`pipeline-ai` 2.8); warm instances (the startup pipe runs once per instance);
//! what a pipeline prints in `pipeline logs run`; files in and out; versions derived from the
//! manifest; requirements bundled (pure Python) or refused (native code), offline from a local
//! folder of wheels; and the authoring API's behaviour, through the built component.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::commands::PipelineCli;
use super::{client_python, drive};
use crate::cli::BIN;
use crate::harness::{Backend, TestServer};
use crate::on_both_stores;

/// Whether this build carries the Python runtime: under `CI=true` it must (the tests fail
/// loudly, never skip); elsewhere the tests skip with a note.
pub fn runtime_built() -> bool {
    if pipewright::plugins::python::RUNTIME.is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but pipewright was built without its Python runtime: install componentize-py \
             0.25.1 and set PIPEWRIGHT_COMPONENTIZE_PY (.ci/run does), then build again"
        );
    }
    eprintln!("note: built without the Python runtime (componentize-py); Python tests skipped");
    false
}

/// The real client's `pipeline` CLI beside its Python.
fn mystic_cli(python: &str) -> PathBuf {
    PathBuf::from(python).with_file_name("pipeline")
}

/// A new directory made by `pipeline container init -n NAME`, as a Mystic user starts one.
pub fn mystic_template(python: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(mystic_cli(python))
        .args(["container", "init", "-n", name])
        .current_dir(dir.path())
        .env("PIPELINE_DIR", dir.path().join(".no-config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "pipeline container init: {out:?}");
    assert!(dir.path().join("pipeline.yaml").is_file());
    std::fs::remove_dir_all(dir.path().join(".no-config")).ok();
    dir
}

/// `pipewright pipeline push DIR ARGS` with `env`; (success, stdout, stderr).
pub fn push_with(
    dir: &Path,
    server: &TestServer,
    token: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["pipeline", "push"])
        .arg(dir)
        .args(["--server", &server.base, "--token", token])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Every file of `dir` with its bytes, to show a push left it as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A pipeline directory written here: Mystic's manifest naming `module:graph`, and `files`.
pub fn python_dir(name: &str, files: &[(&str, &str)], requirements: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = json!({
        "runtime": {"container_commands": [], "python": {"version": "3.10",
            "requirements": requirements}},
        "accelerators": [], "pipeline_graph": "pipe:graph", "pipeline_name": name,
        "description": null, "readme": null, "extras": {},
    });
    std::fs::write(dir.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

/// The run's result as the driver reports it, asserting the client raised nothing.
fn result_of(driven: &Value) -> &Value {
    assert_eq!(driven["raised"], Value::Null, "{driven}");
    &driven["result"]
}

on_both_stores!(
    the_template_runs_through_the_real_client_unchanged_and_stays_warm,
    versions_come_from_the_tag_the_flag_or_the_next_patch,
    files_in_and_out_and_what_a_pipeline_prints,
    requirements_are_bundled_when_pure_python_and_refused_with_native_code,
    the_authoring_api_behaves_as_mystics_through_the_runtime,
    every_example_pushes_as_it_is_and_runs_through_the_real_client,
);

async fn the_template_runs_through_the_real_client_unchanged_and_stays_warm(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let template = mystic_template(&python, "my-pipe");
    let before = snapshot(template.path());
    let (ok, pointer, stderr) = push_with(template.path(), &server, &alice, &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(pointer, "alice/my-pipe:0.1.0");
    assert_eq!(
        snapshot(template.path()),
        before,
        "the push changed the directory"
    );

    // Exactly what Mystic answers for its template: `run_pipeline(pointer, 5)`.
    let first = drive(&python, &server, &alice, &["run-values", &pointer, "[5]"]).await;
    let first = result_of(&first);
    assert_eq!(first["state"], "completed", "{first}");
    assert_eq!(first["outputs"], json!(["Your number: 5"]), "{first}");
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["pipeline_id"], "alice/my-pipe:0.1.0");
    let second = drive(&python, &server, &alice, &["run-values", &pointer, "[6]"]).await;
    let second = result_of(&second);
    assert_eq!(second["outputs"], json!(["Your number: 6"]), "{second}");

    // The load step ran in the first run only: the second found the instance warm.
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    let logged = cli
        .ok(&["logs", "run", first["id"].as_str().unwrap()])
        .await;
    for line in [
        "Loading model...",
        "Model loaded!",
        "Predicting...",
        "Prediction complete!",
    ] {
        assert!(logged.contains(line), "{line} missing from {logged}");
    }
    let logged = cli
        .ok(&["logs", "run", second["id"].as_str().unwrap()])
        .await;
    assert!(logged.contains("Predicting..."), "{logged}");
    assert!(!logged.contains("Loading model..."), "{logged}");

    // A wrong input is the client's input_error, in the run object.
    let wrong = drive(
        &python,
        &server,
        &alice,
        &["run-values", &pointer, "[\"five\"]"],
    )
    .await;
    let wrong = result_of(&wrong);
    assert_eq!(wrong["state"], "failed", "{wrong}");
    assert_eq!(wrong["error"]["type"], "input_error", "{wrong}");
    assert_eq!(
        wrong["error"]["message"],
        "input `Input number` is a integer, not a string"
    );

    // The pipeline as Mystic's CLI lists it: its graph's ports, and the Python that runs it.
    let (status, listed) = server.get("/v4/pipelines", &alice).await;
    assert_eq!(status, 200, "{listed}");
    let pipeline = &listed["data"][0];
    assert_eq!(pipeline["id"], "alice/my-pipe:0.1.0");
    assert_eq!(
        pipeline["input_variables"],
        json!([{"run_io_type": "integer", "title": "Input number", "description": null}])
    );
    assert_eq!(pipeline["output_variables"][0]["run_io_type"], "string");
    let used = pipeline["python_version"].as_str().unwrap();
    assert!(used.starts_with("3."), "{pipeline}");
    let (status, details) = server
        .get("/v1/pipelines/alice/my-pipe/versions/0.1.0", &alice)
        .await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(
        details["definition"]["python"],
        json!({"version": used, "requested": "3.10"}),
        "{details}"
    );
}

async fn versions_come_from_the_tag_the_flag_or_the_next_patch(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let template = mystic_template(&python, "counter");
    let manifest_path = template.path().join("pipeline.yaml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let push = |args: &[&str]| push_with(template.path(), &server, &alice, args, &[]);
    let pushed = |(ok, pointer, stderr): (bool, String, String)| {
        assert!(ok, "{stderr}");
        pointer
    };
    assert_eq!(pushed(push(&[])), "alice/counter:0.1.0");
    assert_eq!(pushed(push(&[])), "alice/counter:0.1.1");
    assert_eq!(pushed(push(&["--version", "0.5.0"])), "alice/counter:0.5.0");
    std::fs::write(
        &manifest_path,
        manifest.replace("pipeline_name: counter", "pipeline_name: counter:2.0.0"),
    )
    .unwrap();
    // The tag wins over the flag.
    assert_eq!(pushed(push(&["--version", "9.9.9"])), "alice/counter:2.0.0");
    // A tag that is not semver leaves the version to the flag, or to the next patch.
    std::fs::write(
        &manifest_path,
        manifest.replace("pipeline_name: counter", "pipeline_name: counter:latest"),
    )
    .unwrap();
    assert_eq!(pushed(push(&[])), "alice/counter:2.0.1");
    // A new pipeline's name is lowercase, as for any Mystic pipeline here.
    std::fs::write(
        &manifest_path,
        manifest.replace("pipeline_name: counter", "pipeline_name: Tally"),
    )
    .unwrap();
    let (ok, _, stderr) = push(&[]);
    assert!(!ok);
    assert!(stderr.contains("must be lowercase"), "{stderr}");
    let run = drive(
        &python,
        &server,
        &alice,
        &["run-values", "alice/counter", "[1]"],
    )
    .await;
    assert_eq!(
        result_of(&run)["outputs"],
        json!(["Your number: 1"]),
        "{run}"
    );
}

const FILES_PIPELINE: &str = r#"
import json
from pipeline import File, Pipeline, Variable, pipe


@pipe
def shout(document: File) -> File:
    text = document.path.read_text()
    print(f"shouting {len(text)} characters")
    out = "/outputs/shouted.txt"
    with open(out, "w") as f:
        f.write(text.upper())
    return File(path=out)


@pipe
def stats(document: File) -> dict:
    text = document.path.read_text()
    return {"name": document.path.name, "lines": len(text.splitlines())}


@pipe
def flags(document: File) -> tuple[bool, float, list]:
    return True, 0.5, ["a", 1]


with Pipeline() as builder:
    document = Variable(File, title="document")
    shouted = shout(document)
    counted = stats(document)
    yes, half, items = flags(document)
    builder.output(shouted, counted, yes, half, items)

graph = builder.get_pipeline()
"#;

async fn files_in_and_out_and_what_a_pipeline_prints(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let dir = python_dir("shout", &[("pipe.py", FILES_PIPELINE)], &["pipeline-ai"]);
    let (ok, pointer, stderr) = push_with(dir.path(), &server, &alice, &[], &[]);
    assert!(ok, "{stderr}");
    let (_, listed) = server.get("/v4/pipelines", &alice).await;
    let types: Vec<&str> = listed["data"][0]["output_variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["run_io_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["file", "dictionary", "boolean", "fp", "array"]);

    let input = tempfile::tempdir().unwrap();
    let document = input.path().join("doc.txt");
    std::fs::write(&document, "one\ntwo").unwrap();
    let driven = drive(
        &python,
        &server,
        &alice,
        &["run-file", &pointer, document.to_str().unwrap()],
    )
    .await;
    let result = result_of(&driven);
    assert_eq!(result["state"], "completed", "{result}");
    let outputs = &result["outputs"];
    assert_eq!(outputs[0]["content"], "ONE\nTWO", "{result}");
    assert_eq!(outputs[1], json!({"name": "doc.txt", "lines": 2}));
    assert_eq!(
        outputs.as_array().unwrap()[2..],
        [json!(true), json!(0.5), json!(["a", 1])]
    );
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    let logged = cli
        .ok(&["logs", "run", result["id"].as_str().unwrap()])
        .await;
    assert!(logged.contains("shouting 7 characters"), "{logged}");
}

/// Writes a wheel into `dir`: `NAME-1.0.0-TAG.whl` holding `NAME/__init__.py` with `code`
/// (and, when not pure, a file of native code). Made with the client's Python (`zipfile`).
fn write_wheel(python: &str, dir: &Path, name: &str, tag: &str, code: &str) {
    let script = r#"
import sys, zipfile, pathlib
dir, name, tag, code = sys.argv[1:5]
pure = tag.endswith("-none-any")
dist = f"{name}-1.0.0.dist-info"
files = {
    f"{name}/__init__.py": code,
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n",
    f"{dist}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {'true' if pure else 'false'}\nTag: {tag}\n",
}
if not pure:
    files[f"{name}/_native.so"] = "not really native"
files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
with zipfile.ZipFile(pathlib.Path(dir) / f"{name}-1.0.0-{tag}.whl", "w") as wheel:
    for path, text in files.items():
        wheel.writestr(path, text)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(dir)
        .args([name, tag, code])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

async fn requirements_are_bundled_when_pure_python_and_refused_with_native_code(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    // A local folder of wheels, and pip told to use nothing else: no network.
    let wheels = tempfile::tempdir().unwrap();
    write_wheel(
        &python,
        wheels.path(),
        "greet",
        "py3-none-any",
        "def hello(n):\n    return f'hi {n}'\n",
    );
    let platform = std::process::Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_platform().replace('-', '_').replace('.', '_'))",
        ])
        .output()
        .unwrap();
    let platform = String::from_utf8(platform.stdout).unwrap();
    write_wheel(
        &python,
        wheels.path(),
        "numpy",
        &format!("py3-none-{}", platform.trim()),
        "",
    );
    let links = wheels.path().to_str().unwrap();
    let env = [
        ("PIPEWRIGHT_PYTHON", python.as_str()),
        ("PIP_NO_INDEX", "1"),
        ("PIP_FIND_LINKS", links),
    ];
    let code = r#"
from pipeline import Pipeline, Variable, pipe
import greet

@pipe
def hello(n: int) -> str:
    return greet.hello(n)

with Pipeline() as builder:
    builder.output(hello(Variable(int)))

graph = builder.get_pipeline()
"#;
    let dir = python_dir(
        "greeter",
        &[("pipe.py", code)],
        &["pipeline-ai==2.8.0", "greet"],
    );
    let (ok, pointer, stderr) = push_with(dir.path(), &server, &alice, &[], &env);
    assert!(ok, "{stderr}");
    let run = drive(&python, &server, &alice, &["run-values", &pointer, "[3]"]).await;
    assert_eq!(result_of(&run)["outputs"], json!(["hi 3"]), "{run}");
    // Bundled under __pypackages__ on the server, not in the user's directory.
    assert!(!dir.path().join("__pypackages__").exists());

    let dir = python_dir("numeric", &[("pipe.py", code)], &["greet", "numpy"]);
    let (ok, _, stderr) = push_with(dir.path(), &server, &alice, &[], &env);
    assert!(!ok);
    assert!(
        stderr.contains("requirement `numpy` has native code"),
        "{stderr}"
    );
    // The server refuses native code that reached it some other way, naming the package.
    let (status, refused) = server
        .post(
            "/v4/pipelines",
            &alice,
            json!({"manifest": {"pipeline_name": "numeric", "pipeline_graph": "pipe:graph"},
                "files": [{"path": "pipe.py", "content_base64": ""},
                    {"path": "__pypackages__/numpy/core.so", "content_base64": ""}]}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["detail"],
        "`numpy` has native code (__pypackages__/numpy/core.so); the Python runtime runs pure-Python packages only"
    );
}

/// One case of the authoring API: a pipeline module, the inputs of a run, and what the run
/// gives (outputs, or the error type and message).
struct Case {
    name: &'static str,
    code: &'static str,
    runs: &'static [(&'static str, Expect)],
}

enum Expect {
    Outputs(&'static str),
    Failed(&'static str, &'static str),
}

const CASES: &[Case] = &[
    Case {
        name: "run-once",
        // A run_once pipe that is not a startup pipe runs in the first run only; on_startup
        // without run_once runs at startup and in every run; the entity keeps its state.
        code: r#"
from pipeline import Pipeline, Variable, entity, pipe

@entity
class Counter:
    def __init__(self):
        self.calls = []

    @pipe(run_once=True)
    def first(self) -> None:
        self.calls.append("first")

    @pipe(on_startup=True)
    def warm(self) -> None:
        self.calls.append("warm")

    @pipe
    def count(self, n: int) -> list:
        self.calls.append(n)
        return list(self.calls)

with Pipeline() as builder:
    n = Variable(int)
    counter = Counter()
    counter.first()
    counter.warm()
    builder.output(counter.count(n))

graph = builder.get_pipeline()
"#,
        runs: &[
            ("[1]", Expect::Outputs(r#"[["warm", "first", "warm", 1]]"#)),
            (
                "[2]",
                Expect::Outputs(r#"[["warm", "first", "warm", 1, "warm", 2]]"#),
            ),
        ],
    },
    Case {
        name: "types",
        // Tuple outputs, an int widened to a float, bool, dict and list inputs, constraints.
        code: r#"
from typing import Tuple
from pipeline import Pipeline, Variable, pipe

@pipe
def mix(x: float, flag: bool, d: dict, items: list) -> Tuple[float, str]:
    return x * 2, f"{flag}:{sorted(d)}:{len(items)}"

with Pipeline() as builder:
    x = Variable(float, gt=0)
    flag = Variable(bool)
    d = Variable(dict)
    items = Variable(list)
    doubled, text = mix(x, flag, d, items)
    builder.output(text, doubled)

graph = builder.get_pipeline()
"#,
        runs: &[
            (
                r#"[2, true, {"b": 1, "a": 2}, [1, 2, 3]]"#,
                Expect::Outputs(r#"["True:['a', 'b']:3", 4.0]"#),
            ),
            (
                r#"[-1, false, {}, []]"#,
                Expect::Failed("input_error", "input: Value is not greater than 0"),
            ),
        ],
    },
    Case {
        name: "raises",
        // What a pipe raises is the run's pipeline_error, as Mystic words it (the repr).
        code: r#"
from pipeline import Pipeline, Variable, pipe

@pipe
def divide(n: int) -> float:
    return 1 / n

with Pipeline() as builder:
    builder.output(divide(Variable(int)))

graph = builder.get_pipeline()
"#,
        runs: &[
            (
                "[0]",
                Expect::Failed("pipeline_error", "ZeroDivisionError('division by zero')"),
            ),
            ("[4]", Expect::Outputs("[0.25]")),
        ],
    },
    Case {
        name: "broken-startup",
        code: r#"
from pipeline import Pipeline, Variable, entity, pipe

@entity
class Model:
    @pipe(run_once=True, on_startup=True)
    def load(self) -> None:
        raise RuntimeError("no weights")

    @pipe
    def predict(self, n: int) -> int:
        return n

with Pipeline() as builder:
    model = Model()
    model.load()
    builder.output(model.predict(Variable(int)))

graph = builder.get_pipeline()
"#,
        runs: &[(
            "[1]",
            Expect::Failed("startup_error", "RuntimeError('no weights')"),
        )],
    },
];

async fn the_authoring_api_behaves_as_mystics_through_the_runtime(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    for case in CASES {
        let dir = python_dir(case.name, &[("pipe.py", case.code)], &[]);
        let (ok, pointer, stderr) = push_with(dir.path(), &server, &alice, &[], &[]);
        assert!(ok, "{}: {stderr}", case.name);
        for (inputs, expect) in case.runs {
            let driven = drive(&python, &server, &alice, &["run-values", &pointer, inputs]).await;
            let result = result_of(&driven);
            match expect {
                Expect::Outputs(outputs) => {
                    let outputs: Value = serde_json::from_str(outputs).unwrap();
                    assert_eq!(result["outputs"], outputs, "{}: {result}", case.name);
                }
                Expect::Failed(kind, message) => {
                    assert_eq!(result["state"], "failed", "{}: {result}", case.name);
                    assert_eq!(result["error"]["type"], *kind, "{}: {result}", case.name);
                    assert_eq!(result["error"]["message"], *message, "{}", case.name);
                }
            }
        }
    }
    // A module that does not load is refused at push, with why.
    let dir = python_dir("broken", &[("pipe.py", "import nowhere\n")], &[]);
    let (ok, _, stderr) = push_with(dir.path(), &server, &alice, &[], &[]);
    assert!(!ok);
    assert!(
        stderr.contains("importing pipe: ModuleNotFoundError(\"No module named 'nowhere'\")"),
        "{stderr}"
    );
    let dir = python_dir("no-graph", &[("pipe.py", "graph = 1\n")], &[]);
    let (ok, _, stderr) = push_with(dir.path(), &server, &alice, &[], &[]);
    assert!(!ok);
    assert!(
        stderr.contains("pipe has no pipeline named graph"),
        "{stderr}"
    );
}

/// `plugins/examples/NAME`, as README names it.
fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/examples")).join(name)
}

async fn every_example_pushes_as_it_is_and_runs_through_the_real_client(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    if !runtime_built() {
        return;
    }
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let input = tempfile::tempdir().unwrap();
    let document = input.path().join("doc.txt");
    std::fs::write(&document, "one\ntwo").unwrap();
    let document = document.to_str().unwrap();
    // Each example: the pointer its push answers, a run (driver scenario and argument) and
    // what the client returns.
    let examples: &[(&str, &str, &str, &str, Value)] = &[
        (
            "hello",
            "alice/hello:0.1.0",
            "run-string",
            "world",
            json!(["Hello, world!"]),
        ),
        (
            "bundled",
            "alice/greeter:0.1.0",
            "run-string",
            "world",
            json!(["Howdy, world!"]),
        ),
        (
            "file-io",
            "alice/shout:0.1.0",
            "run-file",
            document,
            json!([{"content": "# shouted\nONE\nTWO"}, 3]),
        ),
        (
            "python-hello",
            "alice/python-hello:0.1.0",
            "run-values",
            r#"["world", 2]"#,
            json!(["Hello, world! Hello, world!"]),
        ),
    ];
    let mut folders: Vec<String> = std::fs::read_dir(example(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut covered: Vec<String> = examples.iter().map(|e| e.0.to_string()).collect();
    covered.sort();
    assert_eq!(folders, covered, "every example is pushed and run here");
    for (name, pointer, scenario, argument, outputs) in examples {
        let before = snapshot(&example(name));
        let (ok, pushed, stderr) = push_with(&example(name), &server, &alice, &[], &[]);
        assert!(ok, "{name}: {stderr}");
        assert_eq!(pushed, *pointer);
        let driven = drive(&python, &server, &alice, &[scenario, pointer, argument]).await;
        let result = result_of(&driven);
        assert_eq!(result["state"], "completed", "{name}: {result}");
        let mut got = result["outputs"].clone();
        // A file output's link changes from run to run: its content is what is compared.
        for output in got.as_array_mut().unwrap() {
            if let Some(file) = output.as_object_mut() {
                file.remove("file_url");
            }
        }
        assert_eq!(got, *outputs, "{name}");
        // Python examples leave nothing behind; crate examples only their build (target/).
        let after: Vec<_> = snapshot(&example(name))
            .into_iter()
            .filter(|(path, _)| !path.components().any(|c| c.as_os_str() == "target"))
            .collect();
        assert_eq!(after, before, "{name}: the push changed the example");
    }
}
