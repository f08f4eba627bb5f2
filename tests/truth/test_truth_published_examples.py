"""The vendored axolotl examples (tests/fixtures/axolotl-0.19.0/) are what their manifest says: unmodified
copies of the pinned release's files, with its license, and every DeepSpeed file they name is there too
(fast tier: no axolotl needed)."""

from __future__ import annotations

import hashlib

import yaml

from tests.truth.parity_corpus import EXAMPLES, MANIFEST
from tests.truth.proof_table import pinned


def test_the_files_are_the_ones_of_the_manifest_unmodified() -> None:
    on_disk = {str(path.relative_to(EXAMPLES)) for path in EXAMPLES.rglob("*") if path.is_file()} - {
        "MANIFEST.json",
        "NOTICE",
    }
    assert on_disk == set(MANIFEST["files"])
    changed = [
        name
        for name, digest in MANIFEST["files"].items()
        if hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == []


def test_they_come_from_the_pinned_release_with_its_license() -> None:
    assert MANIFEST["version"] == pinned("AXOLOTL") == EXAMPLES.name.removeprefix("axolotl-")
    assert "Apache License" in (EXAMPLES / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in (EXAMPLES / "NOTICE").read_text(encoding="utf-8")


def test_every_deepspeed_file_an_example_names_is_vendored() -> None:
    named = set()
    for name in MANIFEST["files"]:
        if name.startswith("examples/"):
            deepspeed = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")).get("deepspeed")
            if isinstance(deepspeed, str):
                named.add(deepspeed)
    assert named and named <= set(MANIFEST["files"])
