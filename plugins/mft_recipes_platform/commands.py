"""`mft-recipes platform ...`: submit, follow and manage La Plateforme fine-tuning jobs.

Thin click shells over submit.py, follow.py and api.py. Every command takes --json (shapes in
schemas/platform-*.schema.json), the API key only from MISTRAL_API_KEY or --api-key-file, --server-url
(or MISTRAL_SERVER_URL) to talk to another server than api.mistral.ai, and --timeout.

Exit codes: 0 ok; 1 the server refused or failed (or the data is invalid); 2 usage: a malformed URL, no
API key, an unreadable key file or data file, no mistralai SDK.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mft_recipes import EXIT_INVALID, EXIT_USAGE, fail, print_json, recipe_or_fail
from mft_recipes_platform.api import SERVER_URL_VARIABLE, PlatformAPI, Redactor, read_api_key, url_problem
from mft_recipes_platform.follow import FollowResult, checkpoint_line, cost_line, follow_job
from mft_recipes_platform.retries import PlatformError, PlatformUsageError, RetryPolicy

STATUSES = (
    "QUEUED",
    "STARTED",
    "VALIDATING",
    "VALIDATED",
    "RUNNING",
    "FAILED_VALIDATION",
    "FAILED",
    "SUCCESS",
    "CANCELLED",
    "CANCELLATION_REQUESTED",
)


def say(message: str) -> None:
    """Progress and notes go to stderr, so stdout stays the result (and valid JSON with --json)."""
    click.echo(message, err=True)


class Connection:
    """The server and key a command talks to, opened on first use (a dry run never opens it) and
    closed by `connection_options` when the command ends."""

    def __init__(self, server_url: str | None, api_key_file: str | None, timeout: float) -> None:
        self.server_url = server_url
        self.api_key_file = api_key_file
        self.timeout = timeout
        self._api: PlatformAPI | None = None

    @property
    def api(self) -> PlatformAPI:
        """The API, with its key read and its SDK loaded: what a command lacks shows before any request."""
        if self._api is None:
            key = read_api_key(self.api_key_file)
            policy = RetryPolicy(budget=self.timeout)
            self._api = PlatformAPI(key, self.server_url, policy, on_retry=say, redact=Redactor())
            self._api.client  # noqa: B018 -- loads the SDK, or says which one to install
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def checked_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The server URL, or a usage error (exit 2) at once that names where it came from."""
    problem = url_problem(value) if value is not None else None
    if problem:
        from click.core import ParameterSource

        given = (
            f"{SERVER_URL_VARIABLE}={value!r}"
            if ctx.get_parameter_source(param.name or "") == ParameterSource.ENVIRONMENT
            else f"--server-url {value!r}"
        )
        fail(f"{given} is not a server address: {problem} (for example https://api.mistral.ai)")
    return value


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--server-url, --api-key-file and --timeout, given to the command as `connection`; a PlatformError
    anywhere in it becomes a message and exit code 1 (2 for a PlatformUsageError)."""

    @click.option(
        "--server-url",
        envvar=SERVER_URL_VARIABLE,
        metavar="URL",
        callback=checked_url,
        help=f"La Plateforme's address (default https://api.mistral.ai; env {SERVER_URL_VARIABLE}).",
    )
    @click.option(
        "--api-key-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Read the API key from FILE instead of MISTRAL_API_KEY.",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=30,
        show_default=True,
        metavar="SECONDS",
        help="Give up on a request after this long, retries of connection errors, 429 and 5xx included.",
    )
    @functools.wraps(command)
    def wrapper(server_url: str | None, api_key_file: str | None, timeout: float, **kwargs: Any) -> Any:
        connection = Connection(server_url, api_key_file, timeout)
        try:
            return command(connection=connection, **kwargs)
        except PlatformUsageError as error:
            fail(str(error), EXIT_USAGE)
        except PlatformError as error:
            fail(str(error), EXIT_INVALID)
        finally:
            connection.close()

    return wrapper


def json_option(schema: str) -> Callable[[Any], Any]:
    """`--json`, naming the schema in schemas/ its output follows."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print JSON (schemas/{schema}.schema.json).")


def wait_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--wait and --interval, for the commands that can follow a job."""
    command = click.option(
        "--interval",
        type=click.FloatRange(min=0),
        default=10,
        show_default=True,
        metavar="SECONDS",
        help="Polling interval for --wait.",
    )(command)
    return click.option(
        "--wait", is_flag=True, help="Follow the job until it ends (Ctrl-C stops following, not the job)."
    )(command)


@click.group("platform")
def platform() -> None:
    """Submit, follow and manage La Plateforme fine-tuning jobs (Mistral's API is deprecated: see docs/platform.md).

    \b
    mft-recipes platform submit platform-mistral-7b --train train.jsonl --validation valid.jsonl --wait
    mft-recipes platform list --status RUNNING
    mft-recipes platform status JOB
    """


@platform.command(context_settings={"ignore_unknown_options": True})
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--train",
    "train",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training data (JSONL).",
)
@click.option(
    "--validation", type=click.Path(dir_okay=False, path_type=Path), help="Validation data (JSONL, ≤ 1 MB)."
)
@click.option("--dry-run", is_flag=True, help="Check and render only: no upload, no job, nothing spent.")
@click.option("--new-job", is_flag=True, help="Create a job even if this exact payload was submitted before.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where uploads and jobs are recorded (default: the user cache directory).",
)
@wait_options
@json_option("platform-submit")
@connection_options
def submit(
    recipe_name: str,
    overrides: tuple[str, ...],
    train: Path,
    validation: Path | None,
    dry_run: bool,
    wait: bool,
    new_job: bool,
    manifest: Path | None,
    interval: float,
    as_json: bool,
    connection: Connection,
) -> None:
    """Check the data, upload it, and create a job from RECIPE (KEY=VALUE overrides as for `render`)."""
    from mft_recipes import ParameterError, parse_overrides
    from mft_recipes_platform import submit as flow
    from mft_recipes_platform.manifest import Manifest, default_manifest_path

    recipe = recipe_or_fail(recipe_name)
    api = None if dry_run else connection.api  # no key or SDK: said before the data check runs
    try:
        parsed = parse_overrides(overrides)
        submission = flow.prepare(recipe, parsed, train, validation, dict(os.environ), say)
        record = Manifest.load(manifest or default_manifest_path())
    except ParameterError as error:
        fail(str(error))
    except (flow.SubmitError, ValueError) as error:
        fail(str(error), getattr(error, "code", 1))
    for warning in submission.warnings:
        say(f"warning: {warning}")
    if dry_run:
        submission.dry_run = True
        for data_file in submission.files:
            known = record.upload(connection.server_url, data_file.sha256)
            data_file.file_id, data_file.reused = (known["file_id"], True) if known else (None, False)
        flow.render_payload(submission, flow.file_ids(submission))
        if as_json:
            print_json(submission.as_json())
        else:
            for data_file in submission.files:
                action = f"reuse {data_file.file_id} for" if data_file.file_id else "upload"
                say(f"dry run: would {action} {data_file.path} ({data_file.path.stat().st_size:,} bytes)")
            say("dry run: would create this job (nothing was sent):")
            print_json(submission.payload)
        return
    assert api is not None
    result: FollowResult | None = None
    try:
        flow.upload_files(submission, api, record, say)
        flow.render_payload(submission, flow.file_ids(submission))
        flow.create_job(submission, api, record, new_job, dict(os.environ), say)
        job = submission.job or {}
        if submission.reused_job:
            say(
                f"this payload was submitted before as job {job.get('id')} ({job.get('status')}); not creating "
                "another (--new-job to create one anyway)"
            )
        else:
            say(f"created job {job.get('id')} ({job.get('status')})")
        estimate = cost_line(job)
        if estimate:
            say(estimate)
        result = follow(api, job["id"], interval) if wait else None
        if result is not None:
            submission.job = result.job
    except flow.SubmitError as error:
        fail(str(error), error.code)
    except PlatformError as error:
        fail(f"{error}\n{flow.done_so_far(submission, error)}", EXIT_INVALID)
    if as_json:
        print_json(submission.as_json())
    else:
        click.echo(job.get("id"))
    if result is not None:
        finish(result)


def follow(api: PlatformAPI, job_id: str, interval: float) -> FollowResult:
    """Follow a job with `follow_job`: a spinner on a terminal, plain lines otherwise."""
    if not sys.stderr.isatty():
        return follow_job(lambda: api.get_job(job_id), say, interval)
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(f"{job_id}: waiting") as status:
        return follow_job(
            lambda: api.get_job(job_id),
            lambda line: console.print(line, markup=False),
            interval,
            show=lambda line: status.update(line),
        )


def finish(result: FollowResult) -> None:
    """What following ended with, and the exit code: 0 done (or waiting for start), 1 failed, 130 Ctrl-C."""
    job_id = result.job.get("id")
    if result.interrupted:
        say(
            f"stopped following; job {job_id} goes on (mft-recipes platform status {job_id}; "
            f"mft-recipes platform cancel {job_id} to stop it)"
        )
    elif result.waiting_for_start:
        say(f"job {job_id} is validated and waits: mft-recipes platform start {job_id}")
    elif result.job.get("status") == "SUCCESS":
        say(f"job {job_id} succeeded: model {result.job.get('fine_tuned_model')}")
    else:
        say(f"job {job_id} ended {result.job.get('status')}")
    if result.exit_code:
        sys.exit(result.exit_code)


@platform.command()
@click.argument("job_id", metavar="JOB")
@wait_options
@json_option("platform-job")
@connection_options
def status(
    job_id: str,
    wait: bool,
    interval: float,
    as_json: bool,
    connection: Connection,
) -> None:
    """Show a job: status, model, cost estimate, checkpoints (step, train and validation loss)."""
    api = connection.api
    result = follow(api, job_id, interval) if wait else FollowResult(api.get_job(job_id))
    if as_json:
        print_json(result.job)
    else:
        show_job(result.job)
    if wait:
        finish(result)


def show_job(job: dict[str, Any]) -> None:
    click.echo(f"job {job.get('id')}: {job.get('status')}")
    rows = [
        ("type", job.get("job_type")),
        ("model", job.get("model")),
        ("fine-tuned model", job.get("fine_tuned_model")),
        ("suffix", job.get("suffix")),
        ("training files", ", ".join(job.get("training_files") or [])),
        ("validation files", ", ".join(job.get("validation_files") or [])),
        ("hyperparameters", ", ".join(f"{k}={v}" for k, v in (job.get("hyperparameters") or {}).items())),
        ("estimate", cost_line(job)),
        ("trained tokens", job.get("trained_tokens")),
    ]
    for label, value in rows:
        if value not in (None, ""):
            click.echo(f"  {label}: {value}")
    for checkpoint in job.get("checkpoints") or []:
        click.echo(f"  {checkpoint_line(checkpoint)}")


@platform.command("list")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only jobs in this status.",
)
@json_option("platform-jobs")
@connection_options
def list_jobs(status_filter: str | None, as_json: bool, connection: Connection) -> None:
    """List fine-tuning jobs: id, status, type, model, suffix, fine-tuned model."""
    jobs = connection.api.list_jobs(status=status_filter.upper() if status_filter else None)
    if as_json:
        print_json(jobs)
        return
    columns = ("id", "status", "job_type", "model", "suffix", "fine_tuned_model")
    print_table(columns, [[job.get(column) for column in columns] for job in jobs])


def print_table(columns: tuple[str, ...], rows: list[list[Any]]) -> None:
    from rich.table import Table

    from mft_recipes import rich_console

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    rich_console().print(table)


def one_call_command(
    group: click.Group,
    name: str,
    argument: str,
    call: Callable[[PlatformAPI, str], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
    doc: str,
    schema: str,
) -> None:
    """A command that makes one call on one job or model and prints the answer (`describe` for people)."""

    @click.argument("identifier", metavar=argument)
    @json_option(schema)
    @connection_options
    def command(identifier: str, as_json: bool, connection: Connection) -> None:
        answer = call(connection.api, identifier)
        if as_json:
            print_json(answer)
        else:
            click.echo(describe(answer))

    command.__doc__ = doc
    group.command(name)(command)


one_call_command(
    platform,
    "start",
    "JOB",
    PlatformAPI.start_job,
    lambda job: f"job {job.get('id')}: start requested ({job.get('status')})",
    "Start a validated job (one created with auto_start=false), once its cost estimate suits you.",
    "platform-job",
)
one_call_command(
    platform,
    "cancel",
    "JOB",
    PlatformAPI.cancel_job,
    lambda job: f"job {job.get('id')}: cancellation requested ({job.get('status')})",
    "Cancel a job (La Plateforme bills the steps already run).",
    "platform-job",
)


@platform.group()
def models() -> None:
    """Fine-tuned models: list, archive, unarchive, rename."""


@models.command("list")
@json_option("platform-models")
@connection_options
def list_models(as_json: bool, connection: Connection) -> None:
    """List your fine-tuned models: id, name, base model, job, archived."""
    found = connection.api.list_models()
    if as_json:
        print_json(found)
        return
    columns = ("id", "name", "root", "job", "archived")
    print_table(columns, [[model.get(column) for column in columns] for model in found])


one_call_command(
    models,
    "archive",
    "MODEL",
    PlatformAPI.archive_model,
    lambda model: f"{model.get('id')}: archived",
    "Archive a fine-tuned model.",
    "platform-models",
)
one_call_command(
    models,
    "unarchive",
    "MODEL",
    PlatformAPI.unarchive_model,
    lambda model: f"{model.get('id')}: unarchived",
    "Unarchive a fine-tuned model.",
    "platform-models",
)


@models.command()
@click.argument("model_id", metavar="MODEL")
@click.argument("name")
@click.option("--description", help="A new description as well.")
@json_option("platform-models")
@connection_options
def rename(model_id: str, name: str, description: str | None, as_json: bool, connection: Connection) -> None:
    """Rename a fine-tuned model (and optionally describe it)."""
    answer = connection.api.update_model(model_id, name, description)
    if as_json:
        print_json(answer)
    else:
        click.echo(f"{answer.get('id')}: renamed {answer.get('name')!r}")
