#!/usr/bin/env python3
"""A tiny fake of Mystic's /v4 API: exactly the wire shapes that PyPI `pipeline-ai` 2.8.0 needs.

This is the reference the Rust server (`pipewright serve`) is written from. Every shape below was
checked against the client's source (see CLIENT.md beside this file, with file:line references)
and exercised by `drive.py` (see `selftest.py`). Standard library only.

    python fake_server.py --token TOKEN [--port 0] [--log requests.jsonl]

prints `LISTENING http://127.0.0.1:PORT` on stdout once it accepts connections.

Pipelines this fake knows (pointer -> behaviour):
    test/echo:v1       string in -> [string out]         ("hello" -> "hello")
    test/file-upper:v1 file in   -> [file out, integer]  (content upper-cased; integer = byte size)
    test/fail:v1       anything  -> state "failed", error {type: pipeline_error, ...}
    test/slow:v1       like echo, but an async run stays queued/running for ~1 s
    test/busy:v1       no capacity: 503 + Retry-After + run in state no_resources_available,
                       unless the request says wait_for_resources: true (then it runs like echo)
    anything else      404 {"detail": "..."} (no run object: the client raises APIError)

Wire rules the client imposes (pipeline/cloud/...):
  * Auth: every /v4 call carries `Authorization: Bearer TOKEN`. Blob downloads carry NO auth header
    (File.save uses a bare httpx.stream), so blob URLs must be unguessable signed links.
  * A run result (`ClusterRunResult`) needs id, created_at, updated_at, pipeline_id (strings /
    datetimes) and `state` (one of the RunState strings; an integer or null fails validation).
  * Output `type` is a RunIOType string: integer string fp dictionary boolean none array pkl file
    stream. NOTE floats are "fp", not "float"; anything else fails validation of the whole run.
  * A file output needs `file: {name, path, url, size}` (size an int, required; url non-null or
    outputs_formatted() raises "Returned file missing information.").
  * POST /v4/runs: the body is parsed whatever the status code. If it parses, the status is
    ignored (so a failed run can be 200 or 500 alike); state no_resources_available -> the client
    raises NoResourcesAvailable. If it does not parse and the status is non-2xx, the client raises
    APIError(detail = body["detail"], wrapped as {"detail": ...} unless a dict).
  * GET /v4/runs/{id}, POST /v4/files, GET /v4/tokens/validate: any non-2xx raises (APIError, or
    for tokens/validate a failed login) before the body is looked at.
"""

import argparse
import email.parser
import email.policy
import json
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

STATE_LOCK = threading.Lock()
FILES = {}   # file id -> {"name", "path", "data"}          (uploads: POST /v4/files)
BLOBS = {}   # signed token -> {"name", "data", "expires"}  (GET /blobs/{token}/{name}, no auth)
RUNS = {}    # run id -> run record (the ClusterRunResult JSON, kept up to date)

# pointer -> pipeline id. Mystic's pipeline_id is the pipeline's own id, not the pointer.
PIPELINES = {
    "test/echo:v1": "pipeline_echo",
    "test/file-upper:v1": "pipeline_file_upper",
    "test/fail:v1": "pipeline_fail",
    "test/slow:v1": "pipeline_slow",
    "test/busy:v1": "pipeline_busy",
}

BLOB_TTL_SECS = 3600


def now_iso():
    # ISO 8601 with an explicit UTC offset. (pydantic v1 also accepts epoch seconds/ms numbers;
    # a naive string parses to a naive datetime, so always give the offset.)
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def new_run(pipeline_id, inputs, state):
    """A ClusterRunResult (pipeline/cloud/schemas/runs.py:260-309). All keys always present."""
    t = now_iso()
    return {
        "id": "run_" + uuid.uuid4().hex,
        "created_at": t,
        "updated_at": t,
        "pipeline_id": pipeline_id,
        "state": state,            # created routing queued running completed failed
                                   # no_resources_available node_preempted unknown
        "queue_position": None,    # int while queued, else null
        "inputs": inputs,          # the RunInput list as received (optional for the client)
        "outputs": None,           # [RunOutput] once completed, else null
        "error": None,             # ContainerRunError {type, message, traceback} once failed
    }


def run_error(kind, message, traceback=None):
    # kind: input_error cuda_oom cuda_error oom pipeline_error startup_error pipeline_loading
    #       timeout unknown  (ContainerRunErrorType; anything else fails validation)
    return {"type": kind, "message": message, "traceback": traceback}


def string_output(value):
    return {"type": "string", "value": value, "file": None}


def publish_blob(base_url, name, data):
    """Store bytes under an unguessable, expiring token; return the download URL.

    The token sits in the PATH, not in a query string: when such a URL comes back as a run input's
    `file_url`, RunInput.encode_url quote()s it with safe="/:" (schemas/runs.py:218-226), which
    turns '?', '=', '&' into %3F %3D %26 unless the URL already contains a %-escape. A path-only
    URL made of [A-Za-z0-9_.-~/] survives that unchanged.
    """
    token = secrets.token_urlsafe(24)
    with STATE_LOCK:
        BLOBS[token] = {"name": name, "data": data, "expires": time.time() + BLOB_TTL_SECS}
    return f"{base_url}/blobs/{token}/{name}"


def execute(base_url, pointer, inputs):
    """Run a pipeline synchronously; returns (state, outputs, error)."""
    if pointer in ("test/echo:v1", "test/slow:v1", "test/busy:v1"):
        if len(inputs) != 1 or inputs[0].get("type") != "string":
            return "failed", None, run_error("input_error", "expected one string input")
        return "completed", [string_output(inputs[0]["value"])], None
    if pointer == "test/fail:v1":
        return "failed", None, run_error(
            "pipeline_error", "RuntimeError('boom')", "Traceback: guest trapped: boom"
        )
    if pointer == "test/file-upper:v1":
        if len(inputs) != 1 or inputs[0].get("type") != "file":
            return "failed", None, run_error("input_error", "expected one file input")
        data = resolve_file_input(inputs[0])
        if data is None:
            return "failed", None, run_error("input_error", "file input not found")
        out = data.upper()
        name = "upper.txt"
        url = publish_blob(base_url, name, out)
        return "completed", [
            {
                "type": "file",
                "value": None,
                # RunOutputFile: name, path, size required; url must be set for the client
                "file": {"name": name, "path": f"outputs/{name}", "url": url, "size": len(out)},
            },
            {"type": "integer", "value": len(out), "file": None},
        ], None
    raise AssertionError(pointer)


def resolve_file_input(run_input):
    """A file input (pipelines.py:52-55, files.py:212-247) carries:
      uploaded File(path=...): file_path = the `path` POST /v4/files answered, file_name = its
        last segment, file_url = the `url` it answered (quote()d, see publish_blob);
      File(url=...): file_path = the raw URL, file_url = null.
    So resolve by file_path first (a path we issued, or one of our blob URLs), file_url second.
    """
    for candidate in (run_input.get("file_path"), run_input.get("file_url")):
        if not candidate:
            continue
        with STATE_LOCK:
            for f in FILES.values():
                if f["path"] == candidate:
                    return f["data"]
            path = urlsplit(unquote(candidate)).path
            if path.startswith("/blobs/"):
                token = path.split("/")[2]
                blob = BLOBS.get(token)
                if blob and blob["expires"] > time.time():
                    return blob["data"]
    return None


def parse_multipart(content_type, body):
    """Return {field name: (filename, bytes)} of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        fields[name] = (filename, part.get_payload(decode=True))
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    token = None
    log_file = None

    # ---- plumbing -------------------------------------------------------------------------
    def base_url(self):
        return f"http://{self.headers.get('Host')}"

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authorized(self):
        if self.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        # Any non-2xx works for the client; FastAPI's {"detail": ...} is the natural shape.
        self.send_json(401, {"detail": "Invalid or missing API token"})
        return False

    def record(self, **entry):
        if self.log_file:
            entry.update(method=self.command, path=self.path,
                         authorization=self.headers.get("Authorization"),
                         content_type=self.headers.get("Content-Type"))
            with STATE_LOCK:
                self.log_file.write(json.dumps(entry) + "\n")
                self.log_file.flush()

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_server: " + (fmt % args) + "\n")

    # ---- routes ---------------------------------------------------------------------------
    def do_GET(self):
        path = urlsplit(self.path).path
        if path.startswith("/blobs/"):
            return self.get_blob(path)
        self.record()
        if not self.authorized():
            return
        if path == "/v4/tokens/validate":
            # `pipeline cluster login` (cloud/__init__.py:6-14): httpx.get, no redirects followed,
            # raise_for_status -> only a 2xx passes. The body is never read.
            return self.send_json(200, {"valid": True})
        if path.startswith("/v4/runs/"):
            run_id = path[len("/v4/runs/"):]
            with STATE_LOCK:
                run = RUNS.get(run_id)
                run = json.loads(json.dumps(run)) if run else None
            if run is None:
                # get_run (cloud/runs.py:7-10) raises APIError on any non-2xx.
                return self.send_json(404, {"detail": f"Run {run_id} not found"})
            return self.send_json(200, run)
        self.send_json(404, {"detail": "Not Found"})

    def get_blob(self, path):
        # File.save (objects/graph.py:450-474): bare `httpx.stream("GET", url)` -- no auth header,
        # redirects NOT followed, no status check, `int(headers["Content-Length"])` (KeyError if
        # absent, so never chunked). Serve 200 with the bytes and Content-Length.
        self.record()   # the log shows "authorization": null for these
        parts = path.split("/")
        token = parts[2] if len(parts) > 2 else ""
        with STATE_LOCK:
            blob = BLOBS.get(token)
        if blob is None or blob["expires"] <= time.time():
            return self.send_json(404, {"detail": "Not Found"})
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(blob["data"])))
        self.send_header("Content-Disposition", f'attachment; filename="{blob["name"]}"')
        self.end_headers()
        self.wfile.write(blob["data"])

    def do_POST(self):
        path = urlsplit(self.path).path
        body = self.read_body()
        if path == "/v4/files":
            return self.post_file(body)
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        self.record(body=payload)
        if not self.authorized():
            return
        if path == "/v4/runs":
            return self.post_run(payload)
        self.send_json(404, {"detail": "Not Found"})

    def post_file(self, body):
        # upload_file (cloud/files.py:22-28): multipart/form-data, ONE field named "pfile" whose
        # filename is the local path exactly as given to File(path=...) (may be absolute: keep the
        # basename only). Any non-2xx raises APIError. The answer is RemoteFileData
        # (schemas/files.py:6-9): {"id": str, "path": str, "url": str|null}.
        fields = parse_multipart(self.headers.get("Content-Type", ""), body)
        self.record(multipart={k: {"filename": v[0], "size": len(v[1])} for k, v in fields.items()})
        if not self.authorized():
            return
        if "pfile" not in fields:
            return self.send_json(422, {"detail": "field 'pfile' is required"})
        filename, data = fields["pfile"]
        name = (filename or "upload").replace("\\", "/").split("/")[-1] or "upload"
        file_id = "file_" + uuid.uuid4().hex
        # `path` comes back verbatim as the run input's file_path, its last segment as file_name.
        remote_path = f"uploads/{file_id}/{name}"
        with STATE_LOCK:
            FILES[file_id] = {"name": name, "path": remote_path, "data": data}
        url = publish_blob(self.base_url(), name, data)
        self.send_json(200, {"id": file_id, "path": remote_path, "url": url})

    def post_run(self, req):
        # RunCreate (schemas/runs.py:324-334), sent as run_pipeline (pipelines.py:118-132) builds it:
        # {"pipeline": POINTER, "inputs": [RunInput...], "async_run": bool,
        #  "wait_for_resources": bool|null, "run_id": null}
        if not isinstance(req, dict) or not isinstance(req.get("pipeline"), str):
            return self.send_json(422, {"detail": "invalid run request"})
        pointer = req["pipeline"]
        inputs = req.get("inputs") or []
        pipeline_id = PIPELINES.get(pointer)
        if pipeline_id is None:
            # No run object: body doesn't parse as ClusterRunResult, status non-2xx -> APIError
            # with detail {"detail": "..."} (http.py:86-101).
            return self.send_json(404, {"detail": f"Pipeline {pointer} not found"})

        if pointer == "test/busy:v1" and not req.get("wait_for_resources"):
            # Capacity exhausted and the caller won't wait: 503 + Retry-After, body a FULL run
            # object in state no_resources_available (all required fields!), outputs/error null.
            # _run_pipeline (pipelines.py:96-115) parses it and raises NoResourcesAvailable.
            run = new_run(pipeline_id, inputs, "no_resources_available")
            with STATE_LOCK:
                RUNS[run["id"]] = run
            return self.send_json(503, run, headers=[("Retry-After", "5")])

        if req.get("async_run"):
            # The first answer is returned as is (no polling by run_pipeline): 202, state queued,
            # outputs null. The caller polls GET /v4/runs/{id} (cloud/runs.py:13-22) until a
            # terminal state: completed failed no_resources_available node_preempted.
            run = new_run(pipeline_id, inputs, "queued")
            run["queue_position"] = 0
            with STATE_LOCK:
                RUNS[run["id"]] = run
            threading.Thread(
                target=finish_async, args=(self.base_url(), run["id"], pointer, inputs), daemon=True
            ).start()
            return self.send_json(202, run)

        if pointer == "test/busy:v1":
            time.sleep(0.2)   # "waited for resources"
        run = new_run(pipeline_id, inputs, "running")
        state, outputs, error = execute(self.base_url(), pointer, inputs)
        run.update(state=state, outputs=outputs, error=error, updated_at=now_iso())
        with STATE_LOCK:
            RUNS[run["id"]] = run
        # A sync run answers with the finished run. The status is not read by the client once
        # the body parses; 200 for completed and failed alike (a failed run is returned to the
        # caller with `error` filled, never raised).
        self.send_json(200, run)


def finish_async(base_url, run_id, pointer, inputs):
    delay = 1.0 if pointer == "test/slow:v1" else 0.3
    time.sleep(delay / 2)
    with STATE_LOCK:
        RUNS[run_id].update(state="running", queue_position=None, updated_at=now_iso())
    time.sleep(delay / 2)
    state, outputs, error = execute(base_url, pointer, inputs)
    with STATE_LOCK:
        RUNS[run_id].update(state=state, outputs=outputs, error=error, updated_at=now_iso())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--token", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", help="append one JSON line per request (method, path, body)")
    args = ap.parse_args()
    Handler.token = args.token
    Handler.log_file = open(args.log, "a") if args.log else None
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"LISTENING http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
