"""The submit manifest: what was uploaded and which job was created, so a retried submit repeats nothing.

A small JSON file (schemas/platform-manifest.schema.json), by default in the user's cache directory,
keyed by server: the SHA-256 of each uploaded file → its file id, and the SHA-256 of each job payload
(file ids included, keys excluded) → the job id. It holds no key. It is rewritten atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mft_recipes import write_text_atomic

DEFAULT_SERVER = "https://api.mistral.ai"
MANIFEST_VARIABLE = "MFT_RECIPES_PLATFORM_MANIFEST"


def default_manifest_path() -> Path:
    """$MFT_RECIPES_PLATFORM_MANIFEST, else $XDG_CACHE_HOME (or ~/.cache)/mft-recipes/platform-manifest.json."""
    if os.environ.get(MANIFEST_VARIABLE):
        return Path(os.environ[MANIFEST_VARIABLE])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mft-recipes" / "platform-manifest.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def payload_sha256(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read the manifest; a missing one is empty, an unreadable one is an error that names it."""
        if not path.exists():
            return cls(path, {"version": 1, "servers": {}})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{path}: cannot read the submit manifest ({error}); move it away to start afresh"
            ) from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError(f"{path}: not a version 1 submit manifest; move it away to start afresh")
        data.setdefault("servers", {})
        return cls(path, data)

    def _server(self, server_url: str | None) -> dict[str, Any]:
        server: dict[str, Any] = self.data["servers"].setdefault(server_url or DEFAULT_SERVER, {})
        server.setdefault("uploads", {})
        server.setdefault("jobs", {})
        return server

    def upload(self, server_url: str | None, sha256: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._server(server_url)["uploads"].get(sha256)
        return found

    def record_upload(self, server_url: str | None, sha256: str, path: Path, file_id: str) -> None:
        self._server(server_url)["uploads"][sha256] = {
            "file_id": file_id,
            "file": str(path),
            "bytes": path.stat().st_size,
            "uploaded_at": int(time.time()),
        }
        self.save()

    def job(self, server_url: str | None, payload_hash: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._server(server_url)["jobs"].get(payload_hash)
        return found

    def record_job(self, server_url: str | None, payload_hash: str, job_id: str, recipe: str) -> None:
        self._server(server_url)["jobs"][payload_hash] = {
            "job_id": job_id,
            "recipe": recipe,
            "created_at": int(time.time()),
        }
        self.save()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")
