"""The CI workflows: ours runs the README's test command; the game team's audio-pack workflow
builds, packs and verifies for real when its steps are run in a fresh checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile

import yaml
from conftest import REPO, Project


def _steps(path):
    doc = yaml.safe_load(path.read_text())
    (job,) = doc["jobs"].values()
    return job, job["steps"]


def test_project_ci_runs_the_readme_test_command():
    # .ci/run ends with the README's test command (tests/test_docs.py) after installing the
    # prerequisites the README lists; the workflow runs exactly that script in Debian.
    ci_run = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    for pkg in ("ffmpeg", "mono-mcs", "nodejs", "chromium"):
        assert f"missing+=({pkg})" in ci_run and f"`{pkg}`" in readme, pkg
    job, steps = _steps(REPO / ".github" / "workflows" / "ci.yml")
    assert "bookworm" in job["container"]
    assert [s["run"].strip() for s in steps if "run" in s] == ["bash .ci/run"]


def test_audio_pack_workflow_builds_packs_and_verifies(tmp_path):
    job, steps = _steps(REPO / "examples" / "ci" / "audio-pack.yml")
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert {"actions/checkout", "actions/cache", "actions/upload-artifact"} <= set(uses)
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == ".assetbuild/cache" and "assetbuild.lock" in cache["with"]["key"]
    commands = [s["run"] for s in steps if "run" in s and "pip install" not in s["run"]]
    assert "assetbuild build --locked --json" in commands[0] and "assetbuild pack" in commands[1]

    # A team's repository: the manifest and the committed lockfile (built once on a laptop).
    laptop = Project(tmp_path, (REPO / "examples" / "forest" / "assetbuild.toml").read_text())
    laptop.build()
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("assetbuild.toml", "assetbuild.lock"):
        shutil.copy(laptop.root / name, checkout / name)

    github = {"${{ github.workspace }}": str(checkout), "${{ vars.ASSETBUILD_REMOTE_CACHE }}": "",
              "${{ github.ref == 'refs/heads/main' && '1' || '' }}": ""}  # no team cache, a branch
    env = dict(os.environ, **{k: github.get(v, v).replace("${{ github.workspace }}", str(checkout))
                              for k, v in job.get("env", {}).items()})
    assert all("${{" not in v for v in env.values()), "an expression the test does not stand in for"
    for command in commands:  # a cold cache: the locked assets are built again
        proc = subprocess.run(["bash", "-e", "-c", command], cwd=checkout, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    (zip_path,) = (checkout / "dist").glob("*.zip")
    assert zip_path.name == "forest-1.0.0.zip"
    # The laptop's tree packs to the same bytes as CI's rebuild of it.
    assert laptop.run("pack", "-o", str(tmp_path / "laptop-dist")).returncode == 0
    assert (tmp_path / "laptop-dist" / "forest-1.0.0.zip").read_bytes() == zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as z:
        assert "forest-1.0.0/SHA256SUMS" in z.namelist()

    # The same checkout after someone edits a line without rebuilding: the job fails, naming it.
    manifest = checkout / "assetbuild.toml"
    manifest.write_text(manifest.read_text().replace("the old forest was said", "the old wood was said"))
    proc = subprocess.run(["bash", "-e", "-c", commands[0]], cwd=checkout, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and '"forest_intro_01"' in proc.stdout and '"locked": false' in proc.stdout


def test_audio_pack_workflow_with_a_team_cache_main_writes_and_pull_requests_read(tmp_path):
    job, steps = _steps(REPO / "examples" / "ci" / "audio-pack.yml")
    commands = [s["run"] for s in steps if "run" in s and "pip install" not in s["run"]]
    laptop = Project(tmp_path, (REPO / "examples" / "forest" / "assetbuild.toml").read_text())
    laptop.build()
    shared = tmp_path / "team-cache"
    summaries = {}
    for branch, ref in (("main", "refs/heads/main"), ("pr", "refs/pull/7/merge")):
        checkout = tmp_path / branch
        checkout.mkdir()
        for name in ("assetbuild.toml", "assetbuild.lock"):
            shutil.copy(laptop.root / name, checkout / name)
        write = "1" if ref == "refs/heads/main" else ""
        github = {"${{ github.workspace }}": str(checkout), "${{ vars.ASSETBUILD_REMOTE_CACHE }}": f"file://{shared}",
                  "${{ github.ref == 'refs/heads/main' && '1' || '' }}": write}
        env = dict(os.environ, **{k: github.get(v, v).replace("${{ github.workspace }}", str(checkout))
                                  for k, v in job.get("env", {}).items()})
        proc = subprocess.run(["bash", "-e", "-c", commands[0]], cwd=checkout, env=env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        summaries[branch] = json.loads((checkout / "build-summary.json").read_text())
    assert summaries["main"]["generated"] == summaries["main"]["assets"] and summaries["main"]["uploaded"] > 0
    assert (summaries["pr"]["generated"], summaries["pr"]["fetched"]) == (0, summaries["pr"]["assets"])
    assert summaries["pr"]["uploaded"] == 0
