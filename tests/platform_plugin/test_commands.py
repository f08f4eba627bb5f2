"""`mft-recipes platform ...` through the real mistralai SDK (2.5.1) against a stand-in for La Plateforme.

The server (tests/platform_plugin/stand_in.py) is a stand-in for La Plateforme built from its published API:
Mistral's service costs money, needs a key, and Mistral lists its fine-tuning API as deprecated. The
SDK, its HTTP client, the multipart encoding and the JSON bodies are the real ones. Every command's
output is scanned for the API key and the W&B key (the `run` fixture), with MISTRAL_DEBUG set so that
the SDK would log request headers if it were allowed to.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mft_recipes.schemas import check_against_schema
from tests.platform_plugin.conftest import API_KEY, CHAT_LINES, WANDB_KEY
from tests.platform_plugin.stand_in import Failure

JOBS = "/v1/fine_tuning/jobs"


def submit_args(data: dict[str, Path], *extra: str) -> list[str]:
    return [
        "submit",
        "platform-mistral-7b",
        "--train",
        str(data["train"]),
        "--validation",
        str(data["valid"]),
        *extra,
    ]


def test_submit_uploads_each_file_as_multipart_and_sends_the_rendered_job(run, server, data):
    result = run(*submit_args(data, "suffix=support-bot", "learning_rate=2e-4", "training_steps=40"))

    assert result.exit_code == 0, result.output
    uploads = server.calls("POST", "/v1/files")
    assert [upload.multipart["purpose"] for upload in uploads] == ["fine-tune", "fine-tune"]
    assert [upload.multipart["file"]["filename"] for upload in uploads] == ["train.jsonl", "valid.jsonl"]
    assert uploads[0].multipart["file"]["content"] == data["train"].read_bytes()
    assert all(upload.headers["Authorization"] == f"Bearer {API_KEY}" for upload in server.requests)
    train_id, valid_id = list(server.files)
    (create,) = server.calls("POST", JOBS)
    assert create.json == {
        "model": "open-mistral-7b",
        "job_type": "completion",
        "training_files": [{"file_id": train_id, "weight": 1.0}],
        "validation_files": [valid_id],
        "hyperparameters": {"training_steps": 40, "learning_rate": 0.0002},
        "suffix": "support-bot",
        "auto_start": False,
        "invalid_sample_skip_percentage": 0.0,
    }
    (job_id,) = server.jobs
    assert result.stdout.strip() == job_id
    assert "expected cost 4 USD, expected duration 7m00s" in result.stderr


def test_a_retried_submit_reuses_uploads_and_job_unless_asked_for_a_new_one(run, server, data, tmp_path):
    first = run(*submit_args(data))
    again = run(*submit_args(data))

    assert again.exit_code == 0
    assert again.stdout == first.stdout
    assert "submitted before as job" in again.stderr
    assert len(server.calls("POST", "/v1/files")) == 2
    assert len(server.calls("POST", JOBS)) == 1
    new = run(*submit_args(data, "--new-job"))
    assert new.exit_code == 0 and new.stdout != first.stdout
    assert len(server.calls("POST", "/v1/files")) == 2
    assert len(server.jobs) == 2
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert check_against_schema(manifest, "platform-manifest") == []


def test_a_changed_recipe_creates_a_new_job_with_the_same_uploads(run, server, data):
    run(*submit_args(data))
    changed = run(*submit_args(data, "learning_rate=5e-5"))

    assert changed.exit_code == 0
    assert len(server.calls("POST", "/v1/files")) == 2
    assert len(server.jobs) == 2


def test_an_upload_deleted_on_the_server_is_uploaded_again(run, server, data):
    run(*submit_args(data))
    server.files.clear()
    server.jobs.clear()
    again = run(*submit_args(data))

    assert again.exit_code == 0
    assert len(server.calls("POST", "/v1/files")) == 4
    assert len(server.jobs) == 1


def test_429_is_retried_after_the_servers_retry_after(run, server, data, retry_clock):
    server.fail("POST", "/v1/files", Failure(429, {"detail": "slow down"}, {"retry-after": "3"}))
    result = run(*submit_args(data))

    assert result.exit_code == 0
    assert retry_clock.delays == [3.0]
    assert "HTTP 429; retrying in 3.0 s" in result.stderr
    assert len(server.files) == 2 and len(server.jobs) == 1


def test_500_twice_is_retried_with_growing_backoff_and_makes_one_job(run, server, data, retry_clock):
    server.fail("POST", JOBS, Failure(500), Failure(503))
    result = run(*submit_args(data))

    assert result.exit_code == 0
    assert retry_clock.delays == [1.0, 2.0]
    assert len(server.calls("POST", JOBS)) == 3
    assert len(server.jobs) == 1


def test_a_connection_dropped_after_the_job_was_created_does_not_create_a_second(run, server, data):
    server.fail("POST", JOBS, Failure("drop-after"))
    result = run(*submit_args(data))

    assert result.exit_code == 0
    assert len(server.calls("POST", JOBS)) == 1
    assert len(server.jobs) == 1
    assert result.stdout.strip() == next(iter(server.jobs))
    assert "an earlier try created job" in result.stderr


def test_a_connection_dropped_before_an_answer_is_retried(run, server, data, retry_clock):
    server.fail("POST", "/v1/files", Failure("drop"))
    result = run(*submit_args(data))

    assert result.exit_code == 0
    assert "no answer (a connection problem: RemoteProtocolError" in result.stderr
    assert len(server.files) == 2


def test_422_shows_the_servers_detail_and_is_not_retried(run, server, data, retry_clock):
    detail = [{"loc": ["body", "model"], "msg": "Model not available for fine-tuning", "input": WANDB_KEY}]
    server.fail("POST", JOBS, Failure(422, {"detail": detail}))
    result = run(*submit_args(data))

    assert result.exit_code == 1
    assert "HTTP 422" in result.stderr
    assert "model: Model not available for fine-tuning" in result.stderr
    assert len(server.calls("POST", JOBS)) == 1
    assert retry_clock.delays == []


@pytest.mark.parametrize(
    ("status", "advice"), [(401, "MISTRAL_API_KEY"), (403, "no access"), (404, "not found")]
)
def test_401_403_404_are_not_retried_and_say_what_to_do(run, server, status, advice, retry_clock):
    server.fail("GET", f"{JOBS}/job-1", Failure(status, {"detail": "no"}))
    result = run("status", "job-1")

    assert result.exit_code == 1
    assert advice in result.stderr
    assert len(server.requests) == 1 and retry_clock.delays == []


def test_a_wrong_key_is_refused_without_showing_it(run, server):
    result = run("list", env={"MISTRAL_API_KEY": "sk-wrong-0000"})

    assert result.exit_code == 1
    assert "refused the API key (HTTP 401)" in result.stderr
    assert "sk-wrong-0000" not in result.output


def test_retries_stop_when_the_budget_is_spent(run, server, retry_clock):
    server.fail("GET", JOBS, *[Failure(500)] * 20)
    result = run("list", "--timeout", "10")

    assert result.exit_code == 1
    assert "gave up after 4 tries within 10 s" in result.stderr
    assert sum(retry_clock.delays) <= 10
    assert retry_clock.delays == [1.0, 2.0, 4.0]


def test_no_key_means_no_request(run, server):
    result = run("list", env={"MISTRAL_API_KEY": None})

    assert result.exit_code == 2
    assert "set MISTRAL_API_KEY or pass --api-key-file" in result.stderr
    assert server.requests == []


def test_the_key_can_come_from_a_file_and_the_server_from_the_environment(run, server, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY + "\n")
    result = run(
        "list",
        "--api-key-file",
        str(key_file),
        server_url=False,
        env={"MISTRAL_API_KEY": None, "MISTRAL_SERVER_URL": server.url},
    )

    assert result.exit_code == 0
    assert server.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_the_wandb_key_is_sent_but_never_printed_or_stored(run, server, data, tmp_path):
    result = run(
        *submit_args(data, "wandb_project=support", "wandb_run_name=first", "--json"),
        env={"WANDB_API_KEY": WANDB_KEY},
    )

    assert result.exit_code == 0
    (create,) = server.calls("POST", JOBS)
    assert create.json["integrations"] == [
        {"type": "wandb", "project": "support", "name": "first", "api_key": WANDB_KEY}
    ]
    printed = json.loads(result.stdout)
    assert printed["payload"]["integrations"] == [{"type": "wandb", "project": "support", "name": "first"}]
    stored = (tmp_path / "manifest.json").read_text()
    assert WANDB_KEY not in stored and API_KEY not in stored


def test_wandb_without_its_key_is_refused_before_any_upload(run, server, data):
    result = run(*submit_args(data, "wandb_project=support"))

    assert result.exit_code == 1
    assert "WANDB_API_KEY is not set" in result.stderr
    assert server.requests == []


def test_invalid_data_is_refused_before_any_upload(run, server, data):
    data["train"].write_text(json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")
    result = run(*submit_args(data))

    assert result.exit_code == 1
    assert "nothing was uploaded" in result.stderr
    assert "train.jsonl" in result.stderr
    assert server.requests == []


def test_an_oversized_validation_file_is_refused_before_any_upload(run, server, data):
    line = json.dumps(CHAT_LINES[1]) + "\n"
    data["valid"].write_text(line * (1_000_000 // len(line) + 1))
    result = run(*submit_args(data))

    assert result.exit_code == 1
    assert "limit" in result.stderr
    assert server.requests == []


def test_dry_run_touches_nothing_and_prints_a_valid_payload(run, server, data):
    result = run(*submit_args(data, "--dry-run", "--json"), env={"MISTRAL_API_KEY": None})

    assert result.exit_code == 0
    assert server.requests == []
    printed = json.loads(result.stdout)
    assert check_against_schema(printed, "platform-submit") == []
    assert check_against_schema(printed["payload"], "la-plateforme-job") == []
    assert printed["dry_run"] is True and printed["job"] is None
    assert [entry["file_id"] for entry in printed["files"]] == [None, None]


def test_dry_run_after_a_submit_shows_the_reused_file_ids(run, server, data):
    run(*submit_args(data))
    requests_before = len(server.requests)
    result = run(*submit_args(data, "--dry-run"))

    train_id, _ = list(server.files)
    assert f"would reuse {train_id} for {data['train']}" in result.stderr
    assert json.loads(result.stdout)["training_files"] == [{"file_id": train_id, "weight": 1}]
    as_json = json.loads(run(*submit_args(data, "--dry-run", "--json")).stdout)
    assert [(entry["file_id"], entry["reused"]) for entry in as_json["files"]] == [
        (file_id, True) for file_id in server.files
    ]
    assert len(server.requests) == requests_before


def test_wait_shows_status_steps_and_losses_until_success(run, server, data):
    checkpoint = {"step_number": 10, "created_at": 1, "metrics": {"train_loss": 1.25, "valid_loss": 1.5}}
    server.job_script = [
        {"status": "QUEUED"},
        {"status": "RUNNING"},
        {"status": "RUNNING", "checkpoints": [checkpoint]},
        {
            "status": "SUCCESS",
            "fine_tuned_model": "ft:open-mistral-7b:support:abc",
            "checkpoints": [checkpoint],
        },
    ]
    result = run(*submit_args(data, "--wait", "--interval", "0"))

    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    shown = [line for line in lines if line.startswith(("status", "step"))]
    assert shown == [
        "status QUEUED",
        "status RUNNING",
        "step 10  train_loss 1.2500  valid_loss 1.5000",
        "status SUCCESS",
    ]
    assert "succeeded: model ft:open-mistral-7b:support:abc" in lines[-1]


def test_wait_exits_1_when_the_job_fails(run, server, data):
    server.job_script = [{"status": "RUNNING"}, {"status": "FAILED"}]
    result = run(*submit_args(data, "--wait", "--interval", "0"))

    assert result.exit_code == 1
    assert "ended FAILED" in result.stderr


def test_wait_stops_at_validation_when_the_job_waits_for_start(run, server, data):
    server.job_script = [{"status": "VALIDATING"}, {"status": "VALIDATED"}]
    result = run(*submit_args(data, "--wait", "--interval", "0"))

    assert result.exit_code == 0
    assert "expected cost 4 USD" in result.stderr
    assert "mft-recipes platform start" in result.stderr.splitlines()[-1]


def test_ctrl_c_stops_following_not_the_job(run, server, data, monkeypatch):
    from mft_recipes_platform import follow

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(follow, "pause", interrupt)
    server.job_script = [{"status": "RUNNING"}] * 3
    result = run(*submit_args(data, "--wait"))

    assert result.exit_code == 130
    assert "stopped following" in result.stderr
    assert not [request for request in server.requests if request.path.endswith("/cancel")]
    assert next(iter(server.jobs.values()))["status"] == "RUNNING"


def test_status_list_start_cancel_print_json_of_the_documented_shape(run, server, data):
    run(*submit_args(data))
    (job_id,) = server.jobs

    status = run("status", job_id, "--json")
    listed = run("list", "--json", "--status", "queued")
    started = run("start", job_id, "--json")
    cancelled = run("cancel", job_id, "--json")

    assert check_against_schema(json.loads(status.stdout), "platform-job") == []
    assert check_against_schema(json.loads(listed.stdout), "platform-jobs") == []
    assert [job["id"] for job in json.loads(listed.stdout)] == [job_id]
    assert server.calls("GET", JOBS)[-1].query["status"] == ["QUEUED"]
    assert json.loads(started.stdout)["status"] == "STARTED"
    assert json.loads(cancelled.stdout)["status"] == "CANCELLATION_REQUESTED"
    assert server.calls("POST", f"{JOBS}/{job_id}/start") and server.calls("POST", f"{JOBS}/{job_id}/cancel")


def test_status_and_list_print_readable_text(run, server, data):
    server.job_script = [
        {
            "status": "RUNNING",
            "checkpoints": [{"step_number": 5, "created_at": 1, "metrics": {"train_loss": 2.0}}],
        }
    ]
    run(*submit_args(data))
    (job_id,) = server.jobs

    status = run("status", job_id)
    listed = run("list")

    assert status.stdout.splitlines()[0] == f"job {job_id}: RUNNING"
    assert "step 5  train_loss 2.0000" in status.stdout
    assert job_id in listed.stdout and "QUEUED" not in listed.stdout


def test_models_list_archive_unarchive_rename(run, server):
    model_id = "ft:open-mistral-7b:support:" + uuid.uuid4().hex[:8]
    server.add_model(model_id, job_id=str(uuid.uuid4()))

    listed = run("models", "list", "--json")
    archived = run("models", "archive", model_id, "--json")
    unarchived = run("models", "unarchive", model_id)
    renamed = run("models", "rename", model_id, "support-v1", "--description", "first try", "--json")

    for result in (listed, archived, renamed):
        assert check_against_schema(json.loads(result.stdout), "platform-models") == []
    assert [model["id"] for model in json.loads(listed.stdout)] == [model_id]
    assert json.loads(archived.stdout)["archived"] is True
    assert unarchived.stdout.strip() == f"{model_id}: unarchived"
    assert json.loads(renamed.stdout)["name"] == "support-v1"
    (patch,) = server.calls("PATCH", f"/v1/fine_tuning/models/{model_id}")
    assert patch.json == {"name": "support-v1", "description": "first try"}
    assert server.models[model_id]["archived"] is False


def test_submit_refuses_a_recipe_for_another_target(run, server, data):
    result = run("submit", "mistral-7b-qlora", "--train", str(data["train"]))

    assert result.exit_code == 2
    assert "not La Plateforme" in result.stderr
    assert server.requests == []


CLASSIFIER_LINES = [
    {
        "text": "Noise-cancelling over-ear headphones",
        "labels": {"level1": "Electronics", "level2": "Audio", "level3": "Headphones"},
    },
    {"text": "Glass blender, 1.5 L", "labels": {"level1": "Home", "level2": "Kitchen", "level3": "Blenders"}},
]
CLASSIFIER_WORDS = [
    "level1_labels=[Electronics, Home]",
    "level2_labels=[Audio, Kitchen]",
    "level3_labels=[Headphones, Blenders]",
]


def test_submit_a_three_level_classifier_job(run, server, tmp_path):
    train = tmp_path / "products.jsonl"
    train.write_text("".join(json.dumps(line) + "\n" for line in CLASSIFIER_LINES))
    result = run("submit", "platform-classifier", *CLASSIFIER_WORDS, "level3_weight=2", "--train", str(train))

    assert result.exit_code == 0, result.output
    (create,) = server.calls("POST", JOBS)
    assert create.json["job_type"] == "classifier"
    assert create.json["classifier_targets"] == [
        {"name": "level1", "labels": ["Electronics", "Home"], "weight": 1.0, "loss_function": "single_class"},
        {"name": "level2", "labels": ["Audio", "Kitchen"], "weight": 1.0, "loss_function": "single_class"},
        {
            "name": "level3",
            "labels": ["Headphones", "Blenders"],
            "weight": 2.0,
            "loss_function": "single_class",
        },
    ]


def test_classifier_data_with_an_undeclared_label_is_refused_before_any_upload(run, server, tmp_path):
    train = tmp_path / "products.jsonl"
    lines = [
        *CLASSIFIER_LINES,
        {"text": "Toaster", "labels": {"level1": "Home", "level2": "Kitchen", "level3": "Toasters"}},
    ]
    train.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run("submit", "platform-classifier", *CLASSIFIER_WORDS, "--train", str(train))

    assert result.exit_code == 1
    assert "level3 label 'Toasters' (1 sample) is not declared" in result.stderr
    assert server.requests == []
