"""`mft-recipes list` as people read it: on an 80-column terminal no recipe name is cut and nothing runs
past the edge; on a wide one, a table with a line per recipe; piped, plain tab-separated lines that
scripts can cut, with no padding. The terminal is a real pseudo-terminal of the width given."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from mft_recipes.host import get_registry
from tests.refusals import mft

from .samples import override_word, recipe_overrides

RECIPES = get_registry().recipes
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(columns: int, *args: str) -> list[str]:
    """The lines `mft-recipes ARGS` shows on a terminal `columns` wide, without colours."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mft_recipes", *args], stdout=follower, stderr=subprocess.PIPE, env=environment
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program ended and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    return ANSI.sub("", output.decode("utf-8")).replace("\r\n", "\n").splitlines()


def words(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def test_at_80_columns_no_name_is_cut_and_no_line_is_wider() -> None:
    lines = on_terminal(80, "list")
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert "…" not in "".join(lines)
    first_words = {line.split()[0] for line in lines if line[:1].strip()}
    assert first_words == set(RECIPES), "each recipe's name, whole, starts its entry"
    shown = words(lines)
    for recipe in RECIPES.values():
        assert " ".join(recipe.title.split()) in shown, f"{recipe.name}'s summary is there, wrapped"
        assert f"{recipe.model}, {recipe.method}, {recipe.target}, {recipe.hardware.short()}" in shown


def test_on_a_wide_terminal_a_table_has_a_line_per_recipe() -> None:
    lines = on_terminal(250, "list")
    assert lines[0].split()[:5] == ["name", "model", "method", "target", "GPUs"]
    assert lines[0].split()[-1] == "summary"
    for name, recipe in RECIPES.items():
        (line,) = [line for line in lines if line.startswith(name + " ")]
        assert recipe.title in line and recipe.hardware.short() in line


def test_piped_the_list_is_tab_separated_with_the_json_values() -> None:
    result = mft("list")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["name", "model", "method", "target", "GPUs", "trainable", "memory/GPU", "fits", "summary"]  # fmt: skip
    rows = {row["name"]: row for row in json.loads(mft("list", "--json").stdout)}
    assert len(lines) == len(rows)
    for line in lines:
        assert line == line.strip() and "  " not in line, "no padding"
        name, model, method, target, gpus, trainable, memory, fits, summary = line.split("\t")
        row = rows[name]
        assert (model, method, target, summary) == (
            row["model"],
            row["method"],
            row["target"],
            row["summary"],
        )
        assert [trainable, memory, fits] == [
            row["facts"][label] for label in ("trainable", "memory/GPU", "fits")
        ]
        one_node = f"{row['gpus'] // row['nodes']}× {row['gpu']}"
        if row["gpus"] == 0:
            assert gpus == "hosted"
        else:
            assert gpus == (one_node if row["nodes"] == 1 else f"{row['nodes']} nodes × {one_node}")


@pytest.mark.parametrize("name", ["platform-mistral-7b", "platform-classifier"])
def test_a_hosted_recipe_says_hosted_not_zero_gpus(name: str) -> None:
    listed = next(line for line in mft("list").stdout.splitlines() if line.startswith(name + "\t"))
    shown = mft("show", name).stdout
    for text in (listed, shown):
        assert "hosted" in text and "0×" not in text and "0 GB" not in text
    words = [override_word(key, value) for key, value in recipe_overrides(RECIPES[name]).items()]
    rendered = mft("render", name, *words, "--format", "yaml")
    assert "# Written for: hosted.\n" in rendered.stdout, rendered.output


@pytest.mark.parametrize("name", list(RECIPES))
def test_piped_show_is_plain_lines_and_its_parameters_tab_separated(name: str) -> None:
    """No line padded to the 200 columns a piped rich console assumes: the description one line per
    paragraph, the parameters one tab-separated line each, with the values `show --json` gives."""
    result = mft("show", name)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines), "no trailing spaces"
    shown = json.loads(mft("show", name, "--json").stdout)
    for paragraph in shown["description"].split("\n\n"):
        assert " ".join(paragraph.split()) in lines
    start = lines.index("parameters (override with key=value):") + 1
    header, *rows = lines[start : start + 1 + len(shown["parameters"])]
    assert header.split("\t") == ["name", "type", "default", "meaning"]
    for row, parameter in zip(rows, shown["parameters"], strict=True):
        default = "(required)" if parameter["required"] else json.dumps(parameter["default"])
        expected = [parameter["name"], parameter["type"], default, " ".join(parameter["help"].split())]
        assert row.split("\t") == expected


def test_show_on_a_terminal_is_a_table_within_its_width() -> None:
    lines = on_terminal(100, "show", "mixtral-moe")
    assert lines[0].startswith("mixtral-moe: ")
    assert max(len(line) for line in lines) <= 100
    assert any(line.split()[:4] == ["name", "type", "default", "meaning"] for line in lines)
