"""`assetbuild pack` and `verify`: a deterministic zip with SHA256SUMS, and checks that catch damage."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

from conftest import SMALL, Project


def _zip_names(path):
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist()], {i.date_time for i in z.infolist()}, \
            {i.external_attr >> 16 for i in z.infolist()}


def test_pack_is_byte_identical_and_complete(tmp_path):
    p = Project(tmp_path, SMALL.replace('name = "small"', 'name = "small"\nversion = "1.2.0"'))
    p.build()
    proc = p.run("pack")
    assert proc.returncode == 0, proc.stderr
    zip_path = tmp_path / "dist" / "small-1.2.0.zip"
    assert f"into {zip_path}" in proc.stdout
    first = zip_path.read_bytes()

    # Same tree, new mtimes, another pack: the same bytes.
    for f in p.out.rglob("*"):
        f.touch()
    p.run("pack", "-o", str(tmp_path / "again"))
    assert (tmp_path / "again" / "small-1.2.0.zip").read_bytes() == first

    names, times, modes = _zip_names(zip_path)
    assert names == sorted(names) and all(n.startswith("small-1.2.0/") for n in names)
    assert times == {(1980, 1, 1, 0, 0, 0)} and modes == {0o644}
    with zipfile.ZipFile(zip_path) as z:
        sums = dict(reversed(line.split("  ")) for line in z.read("small-1.2.0/SHA256SUMS").decode().splitlines())
        doc = json.loads(z.read("small-1.2.0/assetpack.json"))
        for rel, digest in sums.items():
            assert hashlib.sha256(z.read(f"small-1.2.0/{rel}")).hexdigest() == digest
    on_disk = sorted(f.relative_to(p.out).as_posix() for f in p.out.rglob("*") if f.is_file())
    assert "report.html" in on_disk  # the build report stays out of the pack (it describes one build)
    assert sorted(sums) == [f for f in on_disk if f != "report.html"]
    for r in doc["assets"]:
        assert r["file"] in sums and all(path in sums for path in r["files"].values())
        assert all(path in sums for path in (r.get("subtitles") or {}).values())

    proc = p.run("verify", str(zip_path))
    assert proc.returncode == 0 and f"ok: {len(sums)} files verified" in proc.stdout, proc.stderr


def _repack(src, dest, change):
    """Copy zip ``src`` to ``dest`` with ``change(name, data) -> data | None`` applied (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)


def test_verify_catches_a_changed_a_missing_and_an_extra_file(tmp_path):
    p = Project(tmp_path)
    p.build()
    p.run("pack")
    good = next((tmp_path / "dist").glob("*.zip"))
    top = good.name.removesuffix(".zip")

    changed = tmp_path / "changed.zip"
    _repack(good, changed, lambda n, d: d[:-2] + b"\x01\x02" if n.endswith("line_01.wav") else d)
    proc = p.run("verify", str(changed), "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and not result["ok"]
    assert result["problems"] == ["dialogue/line_01.wav: changed (sha256 differs from SHA256SUMS)"]

    missing = tmp_path / "missing.zip"
    _repack(good, missing, lambda n, d: None if n.endswith("wind.wav") else d)
    proc = p.run("verify", str(missing))
    assert proc.returncode == 1
    assert "error: ambience/wind.wav: missing (listed in SHA256SUMS)" in proc.stderr

    # A file dropped from both the zip and SHA256SUMS is still caught: assetpack.json lists it.
    def drop_everywhere(name, data):
        if name.endswith("line_02.srt"):
            return None
        if name.endswith("SHA256SUMS"):
            return b"".join(ln + b"\n" for ln in data.splitlines() if not ln.endswith(b"line_02.srt"))
        return data
    both = tmp_path / "both.zip"
    _repack(good, both, drop_everywhere)
    proc = p.run("verify", str(both))
    assert proc.returncode == 1 and "dialogue/line_02.srt: missing (listed in assetpack.json)" in proc.stderr

    extra = tmp_path / "extra.zip"
    _repack(good, extra, lambda n, d: d)
    with zipfile.ZipFile(extra, "a") as z:
        z.writestr(f"{top}/sfx/stowaway.wav", b"RIFF")
    proc = p.run("verify", str(extra))
    assert proc.returncode == 1 and "sfx/stowaway.wav: not listed in SHA256SUMS" in proc.stderr

    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    proc = p.run("verify", str(tmp_path / "junk.zip"))
    assert proc.returncode == 1 and "not a readable zip" in proc.stderr and "Traceback" not in proc.stderr


def test_pack_refuses_a_tree_that_does_not_match_its_metadata(tmp_path):
    p = Project(tmp_path)
    p.build()
    (p.out / "sfx" / "coin_01.wav").unlink()
    proc = p.run("pack")
    assert proc.returncode == 1 and "sfx/coin_01.wav: missing" in proc.stderr
    assert not (tmp_path / "dist").exists()
    p.build()  # the build restores it from the cache
    assert p.run("pack").returncode == 0


def test_pack_needs_a_build_and_verify_checks_an_output_folder(tmp_path):
    p = Project(tmp_path)
    proc = p.run("pack", check=False)
    assert proc.returncode == 2 and "run `assetbuild build` first" in proc.stderr
    p.build()
    proc = p.run("verify", str(p.out))
    assert proc.returncode == 0, proc.stderr
    shutil.copy(p.out / "dialogue" / "line_01.wav", p.out / "dialogue" / "line_02.wav")
    proc = p.run("verify", str(p.out))
    assert proc.returncode == 1 and "dialogue/line_02.wav: differs from the sha256 in assetpack.json" in proc.stderr
