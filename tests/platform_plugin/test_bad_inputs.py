"""`mft-recipes platform ...` given a bad address, a dead or silent server, a missing key or SDK: a usage
error (exit 2) at once for what the command line got wrong, a failure (exit 1) within `--timeout` for a
server that does not answer, and always the server's URL and what was uploaded or created so far.

Against the stand-in server of tests/platform_plugin/stand_in.py (see test_commands.py for why), a port
where nothing listens (a dead server) and a socket that accepts connections and never answers (a hung one).
"""

from __future__ import annotations

import gzip
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tests.platform_plugin.conftest import API_KEY
from tests.platform_plugin.stand_in import Failure
from tests.platform_plugin.test_commands import JOBS, submit_args
from tests.refusals import assert_refused


@pytest.fixture
def dead_url() -> str:
    """The address of a port where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hung_url() -> Iterator[str]:
    """The address of a server that accepts connections (the kernel does, from its backlog) and never
    answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize(
    "url", ["not-a-url", "api.mistral.ai", "ftp://api.mistral.ai", "http://", "https:///v1"]
)
def test_a_malformed_server_url_is_a_usage_error_before_any_request(run, server, url):
    started = time.monotonic()
    result = run("list", "--server-url", url, server_url=False)
    assert_refused(result, 2, "--server-url", repr(url), "http")
    assert time.monotonic() - started < 5
    assert server.requests == []


def test_a_malformed_server_url_from_the_environment_names_the_variable(run, server, data):
    result = run(*submit_args(data), server_url=False, env={"MISTRAL_SERVER_URL": "localhost:8080"})
    assert_refused(result, 2, "MISTRAL_SERVER_URL", "'localhost:8080'")
    assert server.requests == []


def test_a_dead_server_fails_within_the_default_timeout_naming_the_url(run, data, dead_url, retry_clock):
    result = run(*submit_args(data, "--server-url", dead_url), server_url=False)
    assert_refused(result, 1, dead_url, "nothing was uploaded and no job was created")
    assert sum(retry_clock.delays) <= 30 and retry_clock.delays  # retried, within 30 s
    assert "--timeout" in result.stderr


def test_a_read_only_command_on_a_dead_server_names_the_url(run, dead_url, retry_clock):
    result = run("status", "job-1", "--server-url", dead_url, "--timeout", "5", server_url=False)
    assert_refused(result, 1, f"get job job-1 at {dead_url}: no answer", "ConnectError")
    assert sum(retry_clock.delays) <= 5


def test_a_hung_server_is_given_up_on_within_timeout(hung_url, tmp_path):
    """Real time, no stand-in clock: the connection is accepted and the answer never comes, so only the
    per-request timeout (the time left of --timeout) ends the call."""
    from mft_recipes_platform.commands import platform

    started = time.monotonic()
    result = CliRunner().invoke(
        platform,
        ["list", "--server-url", hung_url, "--timeout", "2"],
        env={"MISTRAL_API_KEY": API_KEY, "MFT_RECIPES_PLATFORM_MANIFEST": str(tmp_path / "m.json")},
    )
    elapsed = time.monotonic() - started
    assert_refused(result, 1, f"list jobs at {hung_url}: no answer", "ReadTimeout")
    assert elapsed < 10, f"gave up after {elapsed:.1f} s, not about 2"


def test_a_failed_create_says_what_was_uploaded(run, server, data, retry_clock):
    server.fail("POST", JOBS, *[Failure(503)] * 30)
    result = run(*submit_args(data))
    train_id, valid_id = list(server.files)
    assert_refused(
        result,
        1,
        f"create the job at {server.url}: HTTP 503; gave up after 5 tries within 30 s",
        f"uploaded {data['train']} as {train_id}",
        f"{data['valid']} as {valid_id}",
        "no job was created",
        "run the same command again: it reuses the uploads",
    )


def test_one_try_is_one_try(run, server, retry_clock):
    server.fail("GET", JOBS, Failure(500))
    result = run("list", "--timeout", "0.5")
    assert_refused(result, 1, "gave up after 1 try within 0.5 s")


def test_without_the_sdk_every_command_says_what_to_install_and_exits_2(run, server, data, monkeypatch):
    """mistralai is installed in this tier; its absence is stood in for by hiding it from the imports."""
    monkeypatch.setitem(sys.modules, "mistralai.client", None)
    for args in (["list"], submit_args(data)):
        result = run(*args)
        assert_refused(result, 2, "pip install 'mft-recipes[platform]'")
    assert server.requests == []


def test_a_missing_key_key_file_or_data_file_is_a_usage_error(run, server, data, tmp_path):
    assert_refused(run("list", env={"MISTRAL_API_KEY": None}), 2, "MISTRAL_API_KEY")
    missing = tmp_path / "no-such-file"
    for path in (missing, tmp_path):
        assert_refused(run("list", "--api-key-file", str(path)), 2, str(path))
        assert_refused(run(*submit_args({**data, "train": path})), 2, str(path))
        assert_refused(run(*submit_args({**data, "valid": path})), 2, str(path))
    assert server.requests == []


def test_submit_refuses_gzip_data_which_la_plateforme_does_not_read(run, server, data):
    packed = data["train"].with_name("train.jsonl.gz")
    packed.write_bytes(gzip.compress(data["train"].read_bytes()))
    result = run("submit", "platform-mistral-7b", "--train", str(packed))
    assert_refused(result, 2, f"--train {packed}", "gzip", "gunzip")
    assert server.requests == []
