"""`platform submit`: check the data, upload it once, render the recipe with the file ids, create the job once.

Order matters for money and for retries: everything that can fail without the server (overrides, the
rendered payload, data, file sizes, the W&B key) is checked before the first upload; uploads and the
job are recorded in the manifest as soon as they exist, so a submit that dies half-way and is run
again reuses them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mft_recipes_data.files import is_gzip

from mft_recipes import Recipe, plural
from mft_recipes_platform.api import PlatformAPI
from mft_recipes_platform.manifest import Manifest, file_sha256, payload_sha256
from mft_recipes_platform.payload import WANDB_KEY_VARIABLE, with_wandb_key
from mft_recipes_platform.retries import PlatformError

TARGET = "la-plateforme"
FILE_PARAMETERS = {"train": "training_file", "validation": "validation_file"}
PLACEHOLDER_ID = "file-to-be-uploaded"


class SubmitError(Exception):
    """Refused before anything was spent; the message says what to fix. `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class DataFile:
    role: str  # "train" or "validation"
    path: Path
    sha256: str = ""
    file_id: str | None = None
    reused: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "path": str(self.path),
            "bytes": self.path.stat().st_size,
            "sha256": self.sha256,
            "file_id": self.file_id,
            "reused": self.reused,
        }


@dataclass
class Submission:
    recipe: Recipe
    overrides: dict[str, Any]
    files: list[DataFile]
    dry_run: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    job: dict[str, Any] | None = None
    reused_job: bool = False
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.name,
            "dry_run": self.dry_run,
            "files": [data_file.as_json() for data_file in self.files],
            "payload": self.payload,
            "job": self.job,
            "reused_job": self.reused_job,
            "warnings": self.warnings,
        }


def prepare(
    recipe: Recipe,
    overrides: dict[str, Any],
    train: Path,
    validation: Path | None,
    environ: dict[str, str],
    say: Callable[[str], None],
) -> Submission:
    """Everything that needs no server: recipe and overrides, a trial render, the data, the W&B key."""
    if recipe.target != TARGET:
        raise SubmitError(
            f"recipe {recipe.name!r} renders for {recipe.target}, not La Plateforme; "
            f"pick a recipe whose target is {TARGET} (`mft-recipes list`)",
            code=2,
        )
    files = [DataFile("train", train)] + ([DataFile("validation", validation)] if validation else [])
    for data_file in files:
        parameter = FILE_PARAMETERS[data_file.role]
        if parameter not in recipe.parameters:
            raise SubmitError(
                f"recipe {recipe.name!r} has no {parameter} parameter, so it cannot take --{data_file.role}",
                code=2,
            )
        if parameter in overrides:
            raise SubmitError(f"{parameter}= is filled in by submit from --{data_file.role}; drop it", code=2)
        if not data_file.path.is_file():
            raise SubmitError(f"--{data_file.role} {data_file.path}: no such file", code=2)
        if is_gzip(data_file.path):
            raise SubmitError(
                f"--{data_file.role} {data_file.path} is gzip-compressed and La Plateforme reads plain "
                f"JSONL: upload the file it holds (gunzip -k {data_file.path})",
                code=2,
            )
        data_file.sha256 = file_sha256(data_file.path)
    if validation and files[0].sha256 == files[1].sha256:
        raise SubmitError(
            f"--train {train} and --validation {validation} hold the same data; validation "
            "loss on training data says nothing: hold out other examples"
        )
    submission = Submission(recipe, overrides, files)
    placeholders = file_ids(submission)
    render_payload(submission, placeholders)
    check_data(submission, placeholders, say)
    if submission.payload.get("integrations") and not environ.get(WANDB_KEY_VARIABLE):
        raise SubmitError(
            f"the recipe logs to W&B (wandb_project is set) but {WANDB_KEY_VARIABLE} is not set; "
            "export it, or drop wandb_project"
        )
    return submission


def done_so_far(submission: Submission, error: PlatformError) -> str:
    """What a submit that failed on the server left there, and what running it again does."""
    uploaded = [
        f"{data_file.path} as {data_file.file_id}" for data_file in submission.files if data_file.file_id
    ]
    if not uploaded:
        return "nothing was uploaded and no job was created"
    job = (
        "no answer came to the job's creation, so a job may exist: look with `mft-recipes platform list` "
        "before running the same command again (it reuses the uploads)"
        if error.status is None and all(data_file.file_id for data_file in submission.files)
        else "no job was created; run the same command again: it reuses the uploads"
    )
    return f"uploaded {', '.join(uploaded)}; {job}"


def file_ids(submission: Submission) -> dict[str, str]:
    """Each file's id for the payload: its uploaded (or reused) id, else a placeholder (before upload)."""
    return {f.role: f.file_id or f"{PLACEHOLDER_ID}-{f.role}" for f in submission.files}


def render_payload(submission: Submission, ids: dict[str, str]) -> None:
    """Render the recipe with these file ids into `submission.payload`; refuse an invalid payload."""
    from mft_recipes import ParameterError, RenderError, render_document

    try:
        rendered = render_document(submission.recipe, with_file_ids(submission.overrides, ids))
    except (ParameterError, RenderError) as error:
        raise SubmitError(str(error), code=2) from None
    if rendered.errors:
        raise SubmitError("the rendered payload is invalid:\n" + "\n".join(str(p) for p in rendered.errors))
    submission.warnings = [str(problem) for problem in rendered.problems if not problem.is_error]
    submission.payload = rendered.document


def with_file_ids(overrides: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    return {**overrides, **{FILE_PARAMETERS[role]: file_id for role, file_id in ids.items()}}


def check_data(submission: Submission, ids: dict[str, str], say: Callable[[str], None]) -> None:
    """The data checker (plugin mft_recipes_data) with the recipe's tokenizer, format (chat or classifier)
    and La Plateforme's size limits; any error refuses the submit before anything is uploaded."""
    from mft_recipes_data.check import CheckError, CheckOptions, check_files

    files = submission.files
    options = CheckOptions(
        recipe=submission.recipe.name,
        overrides=with_file_ids(submission.overrides, ids),
        roles={str(f.path): f.role for f in files},
        platform=True,
    )
    try:
        report = check_files([f.path for f in files], options)
    except CheckError as error:
        raise SubmitError(f"the data check could not run: {error}", code=2) from None
    for file_report in report.files:
        say(
            f"{file_report.file}: valid examples {file_report.valid_examples:,}, "
            f"tokens {file_report.total_tokens:,}"
        )
    errors = [str(problem) for problem in report.problems if problem.is_error]
    errors += undeclared_labels(submission.payload, report.files)
    if errors:
        shown = errors[:10]
        more = max(len(errors) - len(shown), 0)
        raise SubmitError(
            "the data is not valid for La Plateforme; nothing was uploaded:\n"
            + "\n".join(shown)
            + (f"\n... and {more} more (mft-recipes data check FILE)" if more else "")
        )


def undeclared_labels(payload: dict[str, Any], file_reports: list[Any]) -> list[str]:
    """For a classifier job: labels in the data that its classifier_targets do not declare (the model
    has no output for them), and label keys that are no target at all."""
    declared = {target["name"]: set(target["labels"]) for target in payload.get("classifier_targets") or []}
    if not declared:
        return []
    found = []
    for file_report in file_reports:
        for target, counts in file_report.labels.items():
            if target not in declared:
                found.append(
                    f"{file_report.file}: label key {target!r} is not a classifier target "
                    f"(targets: {', '.join(declared)})"
                )
                continue
            for label, count in sorted(counts.items()):
                if label not in declared[target]:
                    found.append(
                        f"{file_report.file}: {target} label {label!r} ({plural(count, 'sample')}) is not declared; "
                        f"add it to the recipe's labels for {target} or fix the data"
                    )
    return found


def upload_files(
    submission: Submission, api: PlatformAPI, manifest: Manifest, say: Callable[[str], None]
) -> None:
    """Upload each file unless the manifest knows an upload of the same bytes that still exists."""
    for data_file in submission.files:
        known = manifest.upload(api.server_url, data_file.sha256)
        if known and api.file_exists(known["file_id"]):
            data_file.file_id, data_file.reused = known["file_id"], True
            say(f"{data_file.path}: already uploaded as {data_file.file_id}")
            continue
        say(f"uploading {data_file.path} ({data_file.path.stat().st_size:,} bytes)")
        uploaded = api.upload(data_file.path)
        data_file.file_id = uploaded["id"]
        manifest.record_upload(api.server_url, data_file.sha256, data_file.path, data_file.file_id)


def create_job(
    submission: Submission,
    api: PlatformAPI,
    manifest: Manifest,
    new_job: bool,
    environ: dict[str, str],
    say: Callable[[str], None],
) -> None:
    """Create the job, unless the manifest has one for this exact payload (and --new-job is not given)."""
    payload_hash = payload_sha256(submission.payload)
    known = manifest.job(api.server_url, payload_hash)
    if known and not new_job:
        try:
            submission.job = api.get_job(known["job_id"])
            submission.reused_job = True
            return
        except PlatformError as error:
            if error.status != 404:
                raise
    excluded = {known["job_id"]} if known else set()
    started = time.time()

    def find_created() -> dict[str, Any] | None:
        """A job this submit created although its answer was lost (a dropped connection, a 5xx)."""
        from datetime import UTC, datetime

        since = datetime.fromtimestamp(started - 60, tz=UTC)
        for job in api.list_jobs(created_after=since, model=submission.payload["model"], created_by_me=True):
            if job.get("id") not in excluded and _same_job(job, submission.payload):
                say(f"an earlier try created job {job['id']}; not creating another")
                return job
        return None

    try:
        sent = with_wandb_key(submission.payload, environ)
    except KeyError as missing:
        raise SubmitError(f"{missing.args[0]} is not set but the payload has a W&B integration") from None
    api.redact.add(environ.get(WANDB_KEY_VARIABLE))
    job = api.create_job(sent, find_created)
    if "id" not in job:
        raise PlatformError(
            "create the job: the server answered without a job id (job metadata only); "
            "is --server-url a La Plateforme fine-tuning endpoint?"
        )
    manifest.record_job(api.server_url, payload_hash, job["id"], submission.recipe.name)
    submission.job = job


def _same_job(job: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Whether a listed job is the one this payload asks for (same model, files, suffix, type)."""
    wanted_files = sorted(entry["file_id"] for entry in payload["training_files"])
    return (
        job.get("model") == payload["model"]
        and sorted(job.get("training_files") or []) == wanted_files
        and sorted(job.get("validation_files") or []) == sorted(payload.get("validation_files") or [])
        and job.get("suffix") == payload.get("suffix")
        and job.get("job_type", "completion") == payload.get("job_type", "completion")
    )
