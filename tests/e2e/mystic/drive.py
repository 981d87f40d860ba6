#!/usr/bin/env python3
"""Drive the real Mystic client (PyPI `pipeline-ai` 2.8.0) against a server; print ONE JSON object.

    python drive.py --url URL --token TOKEN SCENARIO [args...]

Scenarios:
    login                              `pipeline cluster login NAME TOKEN -u URL -a` (subprocess)
    run-string POINTER TEXT            run_pipeline(POINTER, TEXT)
    run-values POINTER JSON            run_pipeline(POINTER, *VALUES): JSON is a list of plain values
    run-file POINTER PATH              run_pipeline(POINTER, File(path=PATH)); File.save each file output
    run-async POINTER TEXT             run_pipeline(..., async_run=True), then poll_for_run_completion
    run-expect-no-resources POINTER TEXT   run_pipeline(...) expected to raise NoResourcesAvailable
    run-url POINTER URL                run_pipeline(POINTER, File(url=URL)); File.save each file output
    run-remote-file POINTER ID         run_pipeline(POINTER, File(remote_id=ID)); File.save each file output
    stream POINTER TEXT                list(stream_pipeline(POINTER, TEXT)): every result streamed

Only the client's public API is used. Output (stdout, one line of JSON):
    {"scenario": ..., "raised": null, "result": {...}}                    the client returned
    {"scenario": ..., "raised": "ClassName", "message": str(exc), ...}    the client raised
A run result is reported as {id, state, pipeline_id, created_at, updated_at, queue_position,
outputs, error}; `outputs` holds plain JSON values, a file output as {"file_url", "content"}
(content downloaded with File.save, decoded as UTF-8 with replacement). APIError adds status_code
and detail; NoResourcesAvailable adds run_result.

Exit status: 0 whenever a JSON object was printed (client exceptions included); non-zero only for
a bug of this driver (bad arguments, an exception outside the client calls).

Run scenarios first log in with the CLI into a fresh temporary PIPELINE_DIR (as a user would), then
import `pipeline` with that PIPELINE_DIR; `--auth env` instead sets PIPELINE_API_URL and
PIPELINE_API_TOKEN with an empty PIPELINE_DIR. The client prints progress on stdout; that is moved
to stderr so stdout carries only the JSON.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

ALIAS = "pipewright-e2e"


def cli_command():
    """The venv's `pipeline` console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).parent / "pipeline"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipeline.console import _run; sys.exit(_run())"]


def cli_login(url, token, pipeline_dir):
    env = dict(os.environ, PIPELINE_DIR=str(pipeline_dir))
    proc = subprocess.run(
        cli_command() + ["cluster", "login", ALIAS, token, "-u", url, "-a"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    config_path = Path(pipeline_dir) / "config.yaml"
    config_text = config_path.read_text() if config_path.exists() else None
    # The CLI exits 0 even when authentication fails (console/cluster.py:78-85 only prints
    # "Couldn't authenticate"), so success = the remote was saved as the active one.
    ok = (
        proc.returncode == 0
        and config_text is not None
        and f"active_remote: {ALIAS}" in config_text
        and "Successfully authenticated" in proc.stdout
    )
    return {
        "ok": ok,
        "exit_code": proc.returncode,
        "stdout": proc.stdout,
        "stderr": proc.stderr[-4000:],
        "config": config_text,
    }


def exc_report(exc):
    """A client exception as plain JSON."""
    out = {"raised": type(exc).__name__, "message": str(exc)}
    if type(exc).__name__ == "APIError":
        out["status_code"] = exc.status_code
        out["detail"] = exc.detail
        out["url"] = exc.url
    if type(exc).__name__ == "NoResourcesAvailable":
        out["run_result"] = json.loads(exc.run_result.json())
    return out


def plain(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def iso(dt):
    return dt.isoformat() if dt is not None else None


def run_report(result, download_dir=None):
    """A ClusterRunResult as plain JSON, downloading file outputs with File.save."""
    from pipeline.objects import File

    error = None
    if result.error is not None:
        error = {
            "type": getattr(result.error.type, "value", result.error.type),
            "message": result.error.message,
            "traceback": result.error.traceback,
        }
    outputs = None
    if result.outputs is not None:
        outputs = []
        for i, value in enumerate(result.outputs_formatted()):
            if isinstance(value, File):
                target = Path(download_dir or tempfile.mkdtemp()) / f"output-{i}"
                value.save(target)
                outputs.append({
                    "file_url": value.url.geturl(),
                    "content": target.read_bytes().decode("utf-8", errors="replace"),
                })
            else:
                outputs.append(plain(value))
    return {
        "id": result.id,
        "state": getattr(result.state, "value", result.state),
        "pipeline_id": result.pipeline_id,
        "created_at": iso(result.created_at),
        "updated_at": iso(result.updated_at),
        "queue_position": result.queue_position,
        "outputs": outputs,
        "error": error,
    }


def scenario_login(args, pipeline_dir):
    login = cli_login(args.url, args.token, pipeline_dir)
    return {"raised": None, "result": login}


def scenario_run_string(args, work):
    from pipeline.cloud.pipelines import run_pipeline

    pointer, text = need(args, 2)
    try:
        result = run_pipeline(pointer, text)
        return {"raised": None, "result": run_report(result, work)}
    except Exception as exc:  # noqa: BLE001 - every client exception is reported
        return exc_report(exc)


def scenario_run_values(args, work):
    from pipeline.cloud.pipelines import run_pipeline

    pointer, values = need(args, 2)
    try:
        result = run_pipeline(pointer, *json.loads(values))
        return {"raised": None, "result": run_report(result, work)}
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)


def scenario_run_file(args, work):
    from pipeline.cloud.pipelines import run_pipeline
    from pipeline.objects import File

    pointer, path = need(args, 2)
    try:
        result = run_pipeline(pointer, File(path=path))
        return {"raised": None, "result": run_report(result, work)}
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)


def scenario_run_async(args, work):
    from pipeline.cloud.pipelines import run_pipeline
    from pipeline.cloud.runs import poll_for_run_completion

    pointer, text = need(args, 2)
    try:
        first = run_pipeline(pointer, text, async_run=True)
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)
    first_report = run_report(first, work)
    try:
        final = poll_for_run_completion(
            first.id, timeout_secs=args.timeout, interval_secs=args.poll_interval
        )
        return {"raised": None, "result": {"first": first_report, "final": run_report(final, work)}}
    except Exception as exc:  # noqa: BLE001
        return dict(exc_report(exc), first=first_report)


def scenario_run_expect_no_resources(args, work):
    from pipeline.cloud.pipelines import run_pipeline

    pointer, text = need(args, 2)
    try:
        result = run_pipeline(pointer, text)
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)
    # Not raised: report what came back instead; the caller's assertion fails on raised == null.
    return {"raised": None, "result": run_report(result, work)}


def scenario_run_url(args, work):
    from pipeline.cloud.pipelines import run_pipeline
    from pipeline.objects import File

    pointer, url = need(args, 2)
    try:
        result = run_pipeline(pointer, File(url=url))
        return {"raised": None, "result": run_report(result, work)}
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)


def scenario_run_remote_file(args, work):
    from pipeline.cloud.pipelines import run_pipeline
    from pipeline.objects import File

    pointer, remote_id = need(args, 2)
    try:
        result = run_pipeline(pointer, File(remote_id=remote_id))
        return {"raised": None, "result": run_report(result, work)}
    except Exception as exc:  # noqa: BLE001
        return exc_report(exc)


def scenario_stream(args, work):
    from pipeline.cloud.pipelines import stream_pipeline

    pointer, text = need(args, 2)
    streamed = []
    try:
        for result in stream_pipeline(pointer, text):
            streamed.append(run_report(result, work))
        return {"raised": None, "result": streamed}
    except Exception as exc:  # noqa: BLE001
        return dict(exc_report(exc), streamed=streamed)


SCENARIOS = {
    "login": scenario_login,
    "run-string": scenario_run_string,
    "run-values": scenario_run_values,
    "run-file": scenario_run_file,
    "run-async": scenario_run_async,
    "run-expect-no-resources": scenario_run_expect_no_resources,
    "run-url": scenario_run_url,
    "run-remote-file": scenario_run_remote_file,
    "stream": scenario_stream,
}


class DriverUsageError(Exception):
    pass


def need(args, n):
    if len(args.args) != n:
        raise DriverUsageError(f"{args.scenario} takes {n} arguments, got {args.args!r}")
    return args.args


def main():
    ap = argparse.ArgumentParser(description="Drive pipeline-ai 2.8.0; print one JSON object.")
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--auth", choices=["login", "env"], default="login",
                    help="run scenarios: log in with the CLI first (default) or use env vars")
    ap.add_argument("--timeout", type=float, default=60, help="poll timeout, seconds")
    ap.add_argument("--poll-interval", type=float, default=0.2, help="poll interval, seconds")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("args", nargs="*")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pipewright-drive-") as tmp:
        pipeline_dir = Path(tmp) / "pipeline-dir"
        work = Path(tmp) / "downloads"
        work.mkdir()
        if args.scenario == "login":
            out = scenario_login(args, pipeline_dir)
        else:
            if args.auth == "login":
                login = cli_login(args.url, args.token, pipeline_dir)
                if not login["ok"]:
                    out = {"raised": "LoginFailed", "message": "pipeline cluster login failed",
                           "login": login}
                    emit(args.scenario, out)
                    return 0
            else:
                pipeline_dir.mkdir()
                os.environ["PIPELINE_API_URL"] = args.url
                os.environ["PIPELINE_API_TOKEN"] = args.token
            # Must be set before `pipeline` is imported: its configuration loads at import time.
            os.environ["PIPELINE_DIR"] = str(pipeline_dir)
            with contextlib.redirect_stdout(sys.stderr):
                out = SCENARIOS[args.scenario](args, work)
        emit(args.scenario, out)
    return 0


def emit(scenario, out):
    sys.stdout.write(json.dumps(dict({"scenario": scenario}, **out)) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DriverUsageError as exc:
        print(f"drive.py: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception:  # a bug of this driver, not a client exception
        traceback.print_exc()
        sys.exit(1)
