"""One error tree (assetbuild/errors.py): every exception assetbuild raises on purpose derives
from AssetbuildError and carries its exit code; the CLI prints one line per problem."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import assetbuild
from assetbuild import errors
from assetbuild.errors import (
    AssetbuildError,
    BackendUnavailable,
    CacheMiss,
    InvalidRequest,
    ManifestError,
    Problem,
    ProjectBusy,
    UsageError,
    first_line,
)

# Exceptions that never leave the module that raises them (control flow), and the one that is
# FastAPI's own type (the server answers it as FastAPI does).
INTERNAL = {"assetbuild.server.stream._Closed", "assetbuild.server.stream._TooLarge",
            "assetbuild.server.limits.BodyTooLarge"}


def _exception_classes():
    for info in pkgutil.walk_packages(assetbuild.__path__, "assetbuild."):
        if ".scripts." in info.name or info.name.endswith("__main__"):  # Unreal's; the CLI's entry
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                yield f"{cls.__module__}.{cls.__qualname__}", cls


def test_every_error_of_ours_is_under_the_root():
    found = dict(_exception_classes())
    assert len(found) > 15
    stray = [name for name, cls in found.items() if name not in INTERNAL and not issubclass(cls, AssetbuildError)]
    assert stray == []


def test_exit_codes_and_lines():
    assert AssetbuildError("x").exit_code == 1 and CacheMiss("k").exit_code == 1
    for cls in (UsageError, ManifestError, ProjectBusy):
        assert cls("bad").exit_code == 2
    assert BackendUnavailable("needs torch").exit_code == 2 and isinstance(BackendUnavailable("x"), RuntimeError)
    err = InvalidRequest("settings.voice", "no voice 'zz'")
    assert isinstance(err, ValueError) and err.field == "settings.voice" and err.lines() == ["no voice 'zz'"]
    problems = [Problem("a.toml", 'dialogue "x"', "expected a string", "text"), Problem("a.toml", "", "oops")]
    assert ManifestError(problems).lines() == ["a.toml: dialogue \"x\": 'text' expected a string", "a.toml: oops"]
    assert UsageError("no engine given").lines() == ["assetbuild: no engine given"]


def test_first_line():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(RuntimeError("  ")) == "RuntimeError"
    assert errors.first_line(KeyError("k")) == "'k'"


def test_the_cli_prints_one_line_and_exits_with_the_errors_code(tmp_path):
    from conftest import Project

    p = Project(tmp_path, '[[sfx]]\nid = "a"\nprompt = "x"\nbackend = "nope"\n')
    proc = p.run("build", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "unknown backend 'nope'" in proc.stderr
    p.manifest.write_text('[[sfx]]\nid = "a"\nprompt = "x"\n')
    proc = p.run("export", "-e", "godott", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: assetbuild: unknown engine 'godott'; engines: unreal, unity, wwise, fmod"]
