"""A stand-in for La Plateforme's fine-tuning API, built from its published API, on 127.0.0.1.

Mistral's real service cannot be used by tests (it costs money, needs a key, and Mistral lists the API as
deprecated), so this small server implements the documented endpoints the mistralai 2.5.1 SDK calls:
files (multipart upload, retrieve), fine-tuning jobs (create, list, get, start, cancel) and fine-tuned
models (list, archive, unarchive, update), with response bodies of the shapes the SDK's models parse.
It records every request and can be told to fail: a status (429, 500, 422 with a detail), a dropped
connection before or after doing the work, and it moves jobs through a scripted list of states.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    multipart: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Failure:
    """What to do instead of answering: a status with a body, "drop" (close before doing anything),
    or "drop-after" (do the work, then close without answering: the answer is lost)."""

    action: int | str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class StandInPlatform:
    """State and behaviour of the stand-in; `url` is its address once started."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.failures: dict[tuple[str, str], deque[Failure]] = {}
        self.job_script: list[dict[str, Any]] = []  # states each new job goes through, one per GET
        self._scripts: dict[str, deque[dict[str, Any]]] = {}
        self._clock = itertools.count(1_700_000_000)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def start(self) -> StandInPlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, *failures: Failure) -> None:
        """Make the next requests to METHOD PATH (exact path) fail as listed, in order."""
        self.failures.setdefault((method, path), deque()).extend(failures)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.method == method and request.path == path]

    def add_model(self, model_id: str, job_id: str, name: str | None = None) -> None:
        self.models[model_id] = {
            "id": model_id,
            "object": "model",
            "created": next(self._clock),
            "owned_by": "org",
            "root": "open-mistral-7b",
            "job": job_id,
            "archived": False,
            "name": name,
            "type": "fine-tuned",
            "capabilities": {"completion_chat": True},
        }

    # Endpoints

    def upload(self, request: Recorded) -> tuple[int, Any]:
        part = request.multipart.get("file")
        if part is None or request.multipart.get("purpose") != "fine-tune":
            return 422, {"detail": [{"loc": ["body", "purpose"], "msg": "purpose must be fine-tune"}]}
        file_id = str(uuid.uuid4())
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(part["content"]),
            "created_at": next(self._clock),
            "filename": part["filename"],
            "purpose": "fine-tune",
            "sample_type": "instruct",
            "source": "upload",
            "num_lines": part["content"].count(b"\n"),
        }
        return 200, self.files[file_id]

    def create_job(self, request: Recorded) -> tuple[int, Any]:
        body = request.json
        missing = [f["file_id"] for f in body.get("training_files", []) if f["file_id"] not in self.files]
        if missing:
            return 422, {"detail": [{"loc": ["body", "training_files"], "msg": f"unknown file {missing[0]}"}]}
        now = next(self._clock)
        job_id = str(uuid.uuid4())
        job = {
            "id": job_id,
            "object": "job",
            "auto_start": body.get("auto_start", False),
            "model": body["model"],
            "status": "QUEUED",
            "created_at": now,
            "modified_at": now,
            "training_files": [f["file_id"] for f in body["training_files"]],
            "validation_files": body.get("validation_files") or [],
            "hyperparameters": body["hyperparameters"],
            "suffix": body.get("suffix"),
            "job_type": body.get("job_type") or "completion",
            "fine_tuned_model": None,
            "integrations": [
                {key: value for key, value in integration.items() if key != "api_key"}
                for integration in body.get("integrations") or []
            ],
            "metadata": {
                "expected_duration_seconds": 420,
                "cost": 4.0,
                "cost_currency": "USD",
                "train_tokens": 123456,
                "train_tokens_per_step": 1234,
                "data_tokens": 61728,
            },
        }
        if job["job_type"] == "classifier":
            job["classifier_targets"] = [
                {"weight": 1.0, "loss_function": "single_class", **target}
                for target in body["classifier_targets"]
            ]
        self.jobs[job_id] = job
        self._scripts[job_id] = deque(self.job_script)
        return 200, job

    def get_job(self, job_id: str) -> tuple[int, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"detail": "Job not found"}
        script = self._scripts.get(job_id)
        if script:
            job.update(script.popleft())
        return 200, {"checkpoints": [], "events": [], **job}

    def list_jobs(self, request: Recorded) -> tuple[int, Any]:
        jobs = list(self.jobs.values())
        if "status" in request.query:
            jobs = [job for job in jobs if job["status"] == request.query["status"][0]]
        if "model" in request.query:
            jobs = [job for job in jobs if job["model"] == request.query["model"][0]]
        return 200, {"object": "list", "total": len(jobs), "data": jobs}

    def job_action(self, job_id: str, action: str) -> tuple[int, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"detail": "Job not found"}
        job["status"] = "STARTED" if action == "start" else "CANCELLATION_REQUESTED"
        return 200, {"checkpoints": [], "events": [], **job}

    def model_action(self, method: str, model_id: str, rest: str, request: Recorded) -> tuple[int, Any]:
        model = self.models.get(model_id)
        if model is None:
            return 404, {"detail": "Model not found"}
        if rest == "archive":
            model["archived"] = method == "POST"
            return 200, {"id": model_id, "object": "model", "archived": model["archived"]}
        model.update({key: value for key, value in request.json.items() if value is not None})
        return 200, {
            **{key: model[key] for key in ("id", "created", "owned_by", "root", "archived", "name", "job")},
            "object": "model",
            "workspace_id": "ws",
            "root_version": "1",
            "model_type": "completion",
            "capabilities": {"completion_chat": True},
        }

    def route(self, request: Recorded) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        method = request.method
        if (
            parts[:2] != ["v1", "files"]
            and parts[:2] != ["v1", "fine_tuning"]
            and parts[:2] != ["v1", "models"]
        ):
            return 404, {"detail": "Not Found"}
        if parts[1] == "files":
            if method == "POST" and len(parts) == 2:
                return self.upload(request)
            if method == "GET" and len(parts) == 3:
                found = self.files.get(parts[2])
                return (200, {**found, "deleted": False}) if found else (404, {"detail": "File not found"})
        if parts[1] == "models" and method == "GET" and len(parts) == 2:
            return 200, {"object": "list", "data": list(self.models.values())}
        if parts[1:3] == ["fine_tuning", "jobs"]:
            if len(parts) == 3:
                return self.create_job(request) if method == "POST" else self.list_jobs(request)
            if len(parts) == 4 and method == "GET":
                return self.get_job(parts[3])
            if len(parts) == 5 and method == "POST":
                return self.job_action(parts[3], parts[4])
        if parts[1:3] == ["fine_tuning", "models"] and len(parts) >= 4:
            return self.model_action(method, parts[3], parts[4] if len(parts) > 4 else "", request)
        return 404, {"detail": "Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urlparse(self.path)
                request = Recorded(
                    self.command, parsed.path, parse_qs(parsed.query), dict(self.headers), body
                )
                if self.headers.get("content-type", "").startswith("multipart/form-data"):
                    request.multipart = parse_multipart(self.headers["content-type"], body)
                with platform._lock:
                    platform.requests.append(request)
                    queue = platform.failures.get((request.method, request.path))
                    failure = queue.popleft() if queue else None
                    if failure is not None and failure.action == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    headers: dict[str, str] = {}
                    if failure is not None and failure.action != "drop-after":
                        status, answer, headers = int(failure.action), failure.body or {}, failure.headers
                    elif self.headers.get("authorization") != f"Bearer {platform.api_key}":
                        status, answer = 401, {"detail": "Unauthorized"}
                    else:
                        status, answer = platform.route(request)
                    if failure is not None and failure.action == "drop-after":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Fields of a multipart/form-data body: plain fields as text, files as {filename, content, type}."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = cast(str, part.get_param("name", header="content-disposition"))
        content = cast(bytes, part.get_payload(decode=True))  # a leaf part: its decoded bytes
        filename = part.get_filename()
        if filename is not None:
            fields[name] = {"filename": filename, "content": content, "type": part.get_content_type()}
        else:
            fields[name] = content.decode()
    return fields
