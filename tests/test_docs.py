"""Docs stay true: README commands, generated reference and schema, and every TOML example builds."""

from __future__ import annotations

import json
import re
import tomllib

import jsonschema
import pytest
from conftest import REPO, Project

from assetbuild.manifest import load, reference

DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]


def fenced(path, lang=None):
    text = path.read_text(encoding="utf-8")
    pattern = r"```" + (re.escape(lang) if lang else r"[a-z]*") + r"\n(.*?)```"
    return re.findall(pattern, text, flags=re.S)


def test_readme_test_command_is_what_ci_runs():
    blocks = fenced(REPO / "README.md", "sh")
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.strip()]
    test_cmd = next(c for c in commands if "pytest" in c)
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()
    assert any(c.endswith("assetbuild build examples/forest/assetbuild.toml") for c in commands)


def test_generated_reference_and_schema_are_current():
    assert reference.main([]) == 0, "run: python -m assetbuild.manifest.reference --write"


def schema():
    return json.loads((REPO / "manifests" / "assetbuild.schema.json").read_text())


def test_schema_accepts_example_and_rejects_mistakes():
    example = tomllib.loads((REPO / "examples" / "forest" / "assetbuild.toml").read_text())
    jsonschema.validate(example, schema())
    for bad in ({"dialogue": [{"id": "a", "txt": "x"}]}, {"dialogue": [{"id": "CON", "text": "x"}]},
                {"sfx": [{"id": "a", "prompt": "x", "duration": -1}]}, {"project": {"sample_rate": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema())


def test_schema_takes_each_backends_meaning_of_a_shared_setting():
    from assetbuild.starter import STARTER

    # `rate` is words per minute for eSpeak and a speed factor for Piper: both validate.
    jsonschema.validate(tomllib.loads(STARTER.format(name="x")), schema())
    jsonschema.validate({"voices": {"a": {"backend": "piper", "rate": 0.9}, "b": {"backend": "espeak", "rate": 160}}},
                        schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"voices": {"a": {"backend": "espeak", "rate": 1000}}}, schema())


def test_examples_reference_the_schema():
    for path in (REPO / "examples").rglob("*.toml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("#:schema ") and (path.parent / first.split(" ", 1)[1]).resolve() == (
            REPO / "manifests" / "assetbuild.schema.json")


EXAMPLES = [(p, i, block) for p in DOCS for i, block in enumerate(fenced(p, "toml"))]


@pytest.mark.parametrize("path,index,block", EXAMPLES, ids=[f"{p.name}-{i}" for p, i, _ in EXAMPLES])
def test_doc_examples_build(tmp_path, path, index, block):
    manifest = tmp_path / "assetbuild.toml"
    manifest.write_text(block)
    load(manifest)  # validates
    if "[[" in block:  # a full manifest with entries: build it for real
        p = Project.__new__(Project)
        p.root, p.manifest, p.out = tmp_path, manifest, tmp_path / "build" / "audio"
        proc = p.run("build", str(manifest), "--json")
        assert "Traceback" not in proc.stderr, proc.stderr
        s = json.loads(proc.stdout)
        # Examples for the neural backends and paid services build up to what this machine
        # cannot have (weights, an API key): every failure must say exactly that.
        needs = ("is not on this machine; run `assetbuild models pull", "ELEVENLABS_API_KEY is not set")
        assert all(any(n in f["error"] for n in needs) for f in s["failures"]), s["failures"]
        assert s["assets"] - s["failed"] == s["generated"] + s["reused"]
