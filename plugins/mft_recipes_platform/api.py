"""La Plateforme through the real mistralai SDK (2.0 to 2.5.1: the last line with fine-tuning).

Every call goes through `PlatformAPI._call`: transient failures are retried (retries.py) until the
policy's budget (`--timeout`) is spent, each try waiting at most what is left of it, and the others
become a PlatformError whose message names the server and says what to do. No message, log line or error ever holds the API
key or the W&B key: the SDK's debug logging (MISTRAL_DEBUG, which logs request bodies, the W&B key in
the job body included) is replaced by a silent logger, and every message is scrubbed of the keys this
process knows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mft_recipes_platform.retries import (
    PlatformError,
    PlatformUsageError,
    RetryPolicy,
    call_with_retries,
    status_of,
)

T = TypeVar("T")

API_KEY_VARIABLE = "MISTRAL_API_KEY"
SERVER_URL_VARIABLE = "MISTRAL_SERVER_URL"
DEFAULT_SERVER_URL = "https://api.mistral.ai"  # the SDK's (mistralai.client.sdkconfiguration.SERVERS)
SUPPORTED_SDK = "mistralai>=2.0,<=2.5.1"
INSTALL_HINT = (
    "install the SDK line that still has the fine-tuning API: pip install 'mft-recipes[platform]' "
    f"({SUPPORTED_SDK}; mistralai 2.5.2 and later removed fine_tuning)"
)


def read_api_key(api_key_file: str | None, environ: dict[str, str] | None = None) -> str:
    """The API key from --api-key-file or MISTRAL_API_KEY; never from the command line."""
    if api_key_file:
        try:
            key = Path(api_key_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise PlatformUsageError(
                f"--api-key-file {api_key_file}: cannot read it ({error.strerror})"
            ) from None
        if not key:
            raise PlatformUsageError(
                f"--api-key-file {api_key_file} is empty; put the La Plateforme API key in it"
            )
        return key
    key = (os.environ if environ is None else environ).get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise PlatformUsageError(
            f"no API key: set {API_KEY_VARIABLE} or pass --api-key-file FILE (a key is never taken from "
            "the command line, where shells and process lists keep it)"
        )
    return key


@dataclass
class Redactor:
    """Replaces every known secret in a text by `***`."""

    secrets: set[str] = field(default_factory=set)

    def add(self, secret: str | None) -> None:
        if secret:
            self.secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def url_problem(url: str) -> str | None:
    """Why `url` is not a server address (None when it is one): it needs http or https and a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number from 0 to 65535
    except ValueError as error:
        return str(error)
    if parts.scheme not in ("http", "https"):
        return "it needs http:// or https:// first"
    if not parts.hostname:
        return "it has no host"
    return None


def _silent_logger() -> logging.Logger:
    logger = logging.getLogger("mft_recipes_platform.sdk")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)
    return logger


def server_detail(body: str) -> str:
    """The useful part of an error body: FastAPI-style `detail` (locations and messages, never the
    `input` values, which may echo what was sent), or the body itself, shortened."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return (body or "").strip()[:500] or "(no detail)"
    detail = data.get("detail", data.get("message", data)) if isinstance(data, dict) else data
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                parts.append(
                    f"{location}: {item.get('msg', '')}".strip(": ") if location else str(item.get("msg"))
                )
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


def _failure_message(what: str, status: int, body: str) -> str:
    if status == 401:
        return (
            f"{what}: the server refused the API key (HTTP 401); check {API_KEY_VARIABLE} or the file "
            "given to --api-key-file"
        )
    if status == 403:
        return (
            f"{what}: not allowed (HTTP 403); the key's workspace may have no access to fine-tuning, "
            "which Mistral lists as deprecated"
        )
    if status == 404:
        return (
            f"{what}: not found (HTTP 404); check the id (`mft-recipes platform list`) and the server "
            f"(--server-url, {SERVER_URL_VARIABLE})"
        )
    if 200 <= status < 300:
        return (
            f"{what}: the server's answer does not have the shape mistralai {SUPPORTED_SDK} expects; "
            "is --server-url a La Plateforme fine-tuning endpoint?"
        )
    if status == 422:
        return f"{what}: the server refused the request (HTTP 422): {server_detail(body)}"
    return f"{what}: HTTP {status}: {server_detail(body)}"


def as_dict(response: Any) -> dict[str, Any]:
    """An SDK response model as plain JSON data (the shape La Plateforme sent)."""
    if hasattr(response, "model_dump"):
        data: dict[str, Any] = response.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data
    return dict(response)


class PlatformAPI:
    """The calls mft-recipes makes to La Plateforme."""

    def __init__(
        self,
        api_key: str,
        server_url: str | None = None,
        policy: RetryPolicy | None = None,
        on_retry: Callable[[str], None] = lambda message: None,
        redact: Redactor | None = None,
    ) -> None:
        self.server_url = server_url
        self.url = server_url or DEFAULT_SERVER_URL
        self.policy = policy or RetryPolicy()
        self.redact = redact or Redactor()
        self.redact.add(api_key)
        self.on_retry = lambda message: on_retry(self.redact(message))
        self._api_key = api_key
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from mistralai.client import Mistral
            except ImportError:
                raise PlatformUsageError(
                    f"La Plateforme commands need the mistralai SDK: {INSTALL_HINT}"
                ) from None
            client = Mistral(
                api_key=self._api_key,
                server_url=self.server_url,
                timeout_ms=round(self.policy.budget * 1000),
                debug_logger=_silent_logger(),
            )
            if not hasattr(client, "fine_tuning"):
                raise PlatformUsageError(f"this mistralai has no fine-tuning API: {INSTALL_HINT}")
            self._client = client
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.sdk_configuration.client.close()

    def _call(
        self, what: str, call: Callable[[], T], before_retry: Callable[[], T | None] | None = None
    ) -> T:
        self.client  # noqa: B018 -- loads the SDK, or says which one to install
        from mistralai.client.errors import MistralError

        what = f"{what} at {self.url}"
        start = self.policy.clock()

        def attempt() -> T:
            """One try, waiting for the server at most what is left of the budget (the SDK reads its
            configuration's timeout_ms for every request that gives none)."""
            left = self.policy.budget - (self.policy.clock() - start)
            self.client.sdk_configuration.timeout_ms = max(round(left * 1000), 100)
            return call()

        try:
            return call_with_retries(what, attempt, self.policy, self.on_retry, before_retry)
        except MistralError as error:
            status = status_of(error) or 0
            raise PlatformError(
                self.redact(_failure_message(what, status, error.body)),
                status,
                self.redact(server_detail(error.body)),
            ) from None
        except PlatformError as error:
            raise PlatformError(self.redact(str(error)), error.status) from None
        except Exception as error:
            import httpx

            if isinstance(error, httpx.HTTPError):
                raise PlatformError(self.redact(f"{what}: {type(error).__name__}: {error}")) from None
            raise

    # Files

    def upload(self, path: Path) -> dict[str, Any]:
        """Upload a JSONL file with purpose fine-tune (multipart POST /v1/files)."""

        def send() -> Any:
            with path.open("rb") as content:
                return self.client.files.upload(
                    file={"file_name": path.name, "content": content}, purpose="fine-tune"
                )

        return as_dict(self._call(f"upload {path.name}", send))

    def file_exists(self, file_id: str) -> bool:
        try:
            found = as_dict(
                self._call(f"look up file {file_id}", lambda: self.client.files.retrieve(file_id=file_id))
            )
        except PlatformError as error:
            if error.status == 404:
                return False
            raise
        return not found.get("deleted")

    # Jobs

    def create_job(
        self, payload: dict[str, Any], find_created: Callable[[], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Create a job. Before any retry, `find_created` looks for a job an earlier try created but whose
        answer was lost, so that a retry never makes a second job."""
        response = self._call(
            "create the job",
            lambda: as_dict(self.client.fine_tuning.jobs.create(**payload)),
            before_retry=find_created,
        )
        return response

    def get_job(self, job_id: str) -> dict[str, Any]:
        return as_dict(
            self._call(f"get job {job_id}", lambda: self.client.fine_tuning.jobs.get(job_id=job_id))
        )

    def list_jobs(self, **filters: Any) -> list[dict[str, Any]]:
        arguments = {key: value for key, value in filters.items() if value is not None}
        response = as_dict(self._call("list jobs", lambda: self.client.fine_tuning.jobs.list(**arguments)))
        return list(response.get("data", []))

    def start_job(self, job_id: str) -> dict[str, Any]:
        return as_dict(
            self._call(f"start job {job_id}", lambda: self.client.fine_tuning.jobs.start(job_id=job_id))
        )

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return as_dict(
            self._call(f"cancel job {job_id}", lambda: self.client.fine_tuning.jobs.cancel(job_id=job_id))
        )

    # Fine-tuned models

    def list_models(self) -> list[dict[str, Any]]:
        response = as_dict(self._call("list models", lambda: self.client.models.list()))
        return [model for model in response.get("data", []) if model.get("type") == "fine-tuned"]

    def archive_model(self, model_id: str) -> dict[str, Any]:
        return as_dict(
            self._call(f"archive {model_id}", lambda: self.client.models.archive(model_id=model_id))
        )

    def unarchive_model(self, model_id: str) -> dict[str, Any]:
        return as_dict(
            self._call(f"unarchive {model_id}", lambda: self.client.models.unarchive(model_id=model_id))
        )

    def update_model(self, model_id: str, name: str | None, description: str | None) -> dict[str, Any]:
        changes = {
            key: value for key, value in (("name", name), ("description", description)) if value is not None
        }
        return as_dict(
            self._call(f"rename {model_id}", lambda: self.client.models.update(model_id=model_id, **changes))
        )
