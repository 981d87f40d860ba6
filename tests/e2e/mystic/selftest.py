#!/usr/bin/env python3
"""Check drive.py with the real client against fake_server.py; exit 0 when every scenario passes.

    PYTHON=/path/to/pipeline-ai-venv/bin/python python3 selftest.py

PYTHON (default: $PIPEWRIGHT_TEST_PIPELINE_AI_PYTHON) is the interpreter that has pipeline-ai
2.8.0; the fake server runs under this interpreter (standard library only). The same assertions
are what the Rust e2e tests make against `pipewright serve`.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "selftest-token"


def main():
    python = os.environ.get("PYTHON") or os.environ.get("PIPEWRIGHT_TEST_PIPELINE_AI_PYTHON")
    if not python:
        sys.exit("set PYTHON or PIPEWRIGHT_TEST_PIPELINE_AI_PYTHON to the pipeline-ai venv's python")
    tmp = Path(tempfile.mkdtemp(prefix="mystic-selftest-"))
    log = tmp / "requests.jsonl"
    server = subprocess.Popen(
        [sys.executable, str(HERE / "fake_server.py"), "--token", TOKEN, "--log", str(log)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        url = server.stdout.readline().split()[1]
        failures = run_checks(python, url, tmp, log)
    finally:
        server.terminate()
        server.wait(timeout=10)
    for f in failures:
        print("FAIL:", f)
    print(f"selftest: {'ok' if not failures else f'{len(failures)} failure(s)'}")
    return 1 if failures else 0


def drive(python, url, *args, token=TOKEN):
    proc = subprocess.run(
        [python, str(HERE / "drive.py"), "--url", url, "--token", token, *args],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"drive.py {args} exited {proc.returncode}: {proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    if len(lines) != 1:
        raise AssertionError(f"drive.py {args}: expected one line of JSON, got {proc.stdout!r}")
    return json.loads(lines[0])


def run_checks(python, url, tmp, log):
    failures = []

    def check(name, cond, out):
        print(("ok   " if cond else "FAIL ") + name)
        if not cond:
            failures.append(f"{name}: {json.dumps(out)}")

    out = drive(python, url, "login")
    check("login", out["raised"] is None and out["result"]["ok"], out)
    out = drive(python, url, "login", token="wrong")
    check("login with a wrong token fails", out["raised"] is None and not out["result"]["ok"], out)

    out = drive(python, url, "run-string", "test/echo:v1", "hello")
    check("run-string", out["raised"] is None and out["result"]["state"] == "completed"
          and out["result"]["outputs"] == ["hello"] and out["result"]["error"] is None, out)

    src = tmp / "input.txt"
    src.write_text("hello file\n")
    out = drive(python, url, "run-file", "test/file-upper:v1", str(src))
    check("run-file", out["raised"] is None and out["result"]["state"] == "completed"
          and out["result"]["outputs"][0]["content"] == "HELLO FILE\n"
          and out["result"]["outputs"][1] == len("HELLO FILE\n"), out)

    out = drive(python, url, "run-async", "test/slow:v1", "later")
    check("run-async", out["raised"] is None
          and out["result"]["first"]["state"] == "queued"
          and out["result"]["first"]["outputs"] is None
          and out["result"]["final"]["state"] == "completed"
          and out["result"]["final"]["outputs"] == ["later"], out)

    out = drive(python, url, "run-expect-no-resources", "test/busy:v1", "x")
    check("run-expect-no-resources", out["raised"] == "NoResourcesAvailable"
          and out["run_result"]["state"] == "no_resources_available", out)

    out = drive(python, url, "run-string", "test/fail:v1", "x")
    check("failed run is returned, not raised", out["raised"] is None
          and out["result"]["state"] == "failed"
          and out["result"]["error"]["type"] == "pipeline_error", out)

    out = drive(python, url, "run-string", "nobody/nothing:v1", "x")
    check("unknown pipeline -> APIError 404", out["raised"] == "APIError"
          and out["status_code"] == 404, out)

    out = drive(python, url, "--auth", "env", "run-string", "test/echo:v1", "env")
    check("run-string with --auth env", out["raised"] is None
          and out["result"]["outputs"] == ["env"], out)

    requests = [json.loads(line) for line in log.read_text().splitlines()]
    blobs = [r for r in requests if r["path"].startswith("/blobs/")]
    check("file output downloaded without an Authorization header",
          blobs and all(r["authorization"] is None for r in blobs), blobs)
    uploads = [r for r in requests if r["path"] == "/v4/files"]
    check("upload is multipart field 'pfile'",
          uploads and all(list(r["multipart"]) == ["pfile"] for r in uploads), uploads)
    return failures


if __name__ == "__main__":
    sys.exit(main())
