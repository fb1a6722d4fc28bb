"""The build report: <output>/report.html, its waveform cache, `assetbuild report`, and the page
itself opened in headless Chromium (skipped only where no chromium binary is installed)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest

from assetbuild.export import report


def _page(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def _articles(page: str) -> dict[str, str]:
    """Asset key -> its <article> markup."""
    return {html.unescape(m.group(1)): m.group(0)
            for m in re.finditer(r'<article class="asset" id="a-([^"]+)".*?</article>', page, flags=re.S)}


def _status(article: str) -> str:
    return re.search(r'class="badge st-([a-z]+)"', article).group(1)


def _key(r: dict) -> str:
    return f"{r['locale']}/{r['id']}" if r.get("locale") else r["id"]


def test_report_has_a_player_and_waveform_per_asset_and_statuses(project):
    project.edit('prompt = "gentle wind"', 'prompt = "gentle wind"\nloudness = -30')
    project.build()
    out, doc = project.out, project.pack()
    page = _page(out)
    assets = doc["assets"]
    assert len(assets) == 5
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "@import" not in page and "url(" not in page
    srcs = re.findall(r'<audio controls preload="none" src="([^"]+)">', page)
    assert len(srcs) == page.count("<audio") == len(assets)
    assert sorted(unquote(html.unescape(s)) for s in srcs) == sorted(r["file"] for r in assets)
    assert all((out / unquote(s)).is_file() for s in srcs)
    assert page.count('<svg class="wave"') == len(assets)
    articles = _articles(page)
    assert set(articles) == {_key(r) for r in assets}
    assert {_status(a) for a in articles.values()} == {"generated"}
    assert 'class="failures"' not in page
    # The loop is drawn on the wind's waveform; dialogue words are spans with their timings.
    assert 'class="loop"' in articles["wind"] and 'class="loop"' not in articles["coin_01"]
    line = next(r for r in assets if r["id"] == "line_01")
    spans = re.findall(r'<span class="w">([^<]*)</span>', articles["line_01"])
    assert spans == [w["text"] for w in line["words"]] and len(spans) >= 3
    times = re.search(r'data-t="([^"]*)"', articles["line_01"]).group(1).split()
    assert [float(t) for t in times[:2]] == [line["words"][0]["start"], line["words"][0]["end"]]
    assert "-30.0 LUFS" in articles["wind"] and "take</dt><dd>coin #2" in articles["coin_02"]

    # A no-op build leaves the report alone.
    before = os.stat(out / "report.html")
    assert project.build()["processed"] == 0
    after = os.stat(out / "report.html")
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)

    # Re-mastering one asset: it is "re-processed", the others were reused; only its new file's
    # waveform is read and cached.
    waves = project.root / ".assetbuild" / "waveforms"
    cached = {p: p.stat().st_mtime_ns for p in waves.rglob("*.json")}
    assert len(cached) == len({r["sha256"] for r in assets})
    project.edit("loudness = -30", "loudness = -24")
    s = project.build()
    assert (s["generated"], s["processed"]) == (0, 1)
    articles = _articles(_page(out))
    assert {k: _status(a) for k, a in articles.items()} == {
        "line_01": "reused", "line_02": "reused", "wind": "processed", "coin_01": "reused", "coin_02": "reused"}
    assert "-24.0 LUFS" in articles["wind"] and "re-processed" in articles["wind"]
    now = {p: p.stat().st_mtime_ns for p in waves.rglob("*.json")}
    assert {p: now[p] for p in cached} == cached  # none rewritten
    new = set(now) - set(cached)
    wind = next(r for r in project.pack()["assets"] if r["id"] == "wind")
    assert [p.stem for p in new] == [wind["sha256"]]

    # clean removes the report with the other outputs; the next build writes it again.
    assert project.run("clean").returncode == 0
    assert not (out / "report.html").exists()
    project.build()
    assert {_status(a) for a in _articles(_page(out)).values()} == {"reused"}


def test_failures_are_listed_first_and_the_failed_asset_keeps_its_previous_output(project):
    project.build()
    project.edit('[voices.guide]', '[voices.broken]\nvoice = "xx-nope"\n\n[voices.guide]')
    project.edit('id = "line_01"\nvoice = "guide"', 'id = "line_01"\nvoice = "broken"')
    project.edit('id = "line_02"', 'id = "line_03"\nvoice = "broken"\ntext = "Never built."\n\n[[dialogue]]\nid = "line_02"')
    s = project.build(expect=1)
    assert sorted(f["id"] for f in s["failures"]) == ["line_01", "line_03"]
    page = _page(project.out)
    failures = re.search(r'<section class="failures" id="failures">(.*?)</section>', page, flags=re.S).group(1)
    assert page.index('class="failures"') < page.index('<article')
    assert "Failures (2)" in failures and "xx-nope" in failures
    # line_01 is still in the pack (its previous output) and linked; line_03 never built.
    assert '<a href="#a-line_01">line_01</a>' in failures and "<b>line_03</b>" in failures
    articles = _articles(page)
    assert _status(articles["line_01"]) == "failed" and "previous output kept" in articles["line_01"]
    assert "data-problem" in articles["line_01"] and "line_03" not in articles
    assert {_status(a) for k, a in articles.items() if k != "line_01"} == {"reused"}
    assert "2 failed" in page


def test_waveforms_are_read_only_for_new_files(localised_out, tmp_path, monkeypatch):
    doc = json.loads((localised_out / "assetpack.json").read_text())
    shas = {r["sha256"] for r in doc["assets"]}
    read = []
    compute = report.compute_waveform
    monkeypatch.setattr(report, "compute_waveform", lambda path, *a: read.append(path) or compute(path, *a))
    cache = tmp_path / "waves"
    first = report.waveforms(localised_out, doc["assets"], cache)
    assert len(read) == len(shas) and set(first) == shas
    assert sorted(p.stem for p in cache.rglob("*.json")) == sorted(shas)
    assert not list(cache.rglob("*.tmp"))
    read.clear()
    assert report.waveforms(localised_out, doc["assets"], cache) == first and read == []
    # A lost or damaged entry (or one that would inject markup) is computed again.
    one, two = sorted(shas)[:2]
    (cache / one[:2] / f"{one}.json").unlink()
    (cache / two[:2] / f"{two}.json").write_text('{"v":1,"columns":2,"step":1,"d":"M0 0\\"/><script>"}')
    assert report.waveforms(localised_out, doc["assets"], cache) == first
    assert len(read) == 2

    w = first[doc["assets"][0]["sha256"]]
    assert 0 < w["columns"] <= report.COLUMNS and re.fullmatch(r"M0 \d+[-0-9hVZ]+Z", w["d"])
    # The page is written only when its text changes.
    path = report.write(tmp_path, doc, {}, [], cache)
    mtime = path.stat().st_mtime_ns
    assert report.write(tmp_path, doc, {}, [], cache) == path and path.stat().st_mtime_ns == mtime


def test_waveform_peaks_follow_the_audio(tmp_path):
    import numpy as np
    import soundfile as sf

    rate = 8000
    audio = np.zeros((rate * 2, 2), dtype="float32")
    audio[:rate, 0] = 0.5  # loud first half on the left channel, silence after
    audio[rate:, 1] = -1.0  # full-scale negative second half on the right
    sf.write(tmp_path / "a.wav", audio, rate)
    w = report.compute_waveform(tmp_path / "a.wav", columns=100)
    assert w["columns"] == 100 and w["step"] == 160
    mid = report.HEIGHT // 2
    # First half from 0.5 (top row 16) down to the centre; second half from centre to -1.0.
    assert w["d"] == f"M0 16h50V{mid - 1}h50V{report.HEIGHT}h-50V{mid + 1}h-50Z"


def test_render_escapes_text():
    doc = {"project": {"name": "<b>x</b>", "version": "1"}, "assets": [
        {"id": "a", "kind": "dialogue", "file": "dialogue/a b.wav", "sha256": "0" * 64, "duration": 1.0,
         "text": 'Say "<script>alert(1)</script>" & go', "words": [{"text": "Say", "start": 0.0, "end": 0.2,
                                                                    "span": [0, 3]}],
         "warnings": ["<i>w</i>"], "speaker": "<Bob>"},
        {"id": "s", "kind": "sfx", "file": "sfx/s.wav", "sha256": "1" * 64, "prompt": "<img src=x onerror=1>",
         "target_met": False, "loop": {"start": 0, "end": 99}}]}
    page = report.render(doc, Path("out"), {"a": "generated"}, [{"id": "z", "error": "<boom>"}], {})
    assert "<script>alert" not in page and "<img" not in page and "<i>" not in page and "<boom>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;Bob&gt;" in page
    assert 'src="dialogue/a%20b.wav"' in page and page.count("no waveform") == 2
    assert '<span class="w">Say</span> &quot;&lt;script' in page
    assert "target not met" in page and page.count("<audio") == 2
    assert "<title>&lt;b&gt;x&lt;/b&gt; 1: audio report</title>" in page


def test_render_is_fast_with_cached_waveforms(localised_out, tmp_path):
    import time

    doc = json.loads((localised_out / "assetpack.json").read_text())
    waves = report.waveforms(localised_out, doc["assets"], tmp_path / "waves")
    big = {"project": doc["project"], "assets": [dict(r, id=f"{r['id']}_{i}") for i in range(250)
                                                 for r in doc["assets"]]}  # 2,000 assets
    start = time.perf_counter()
    page = report.render(big, localised_out, {}, [], waves)
    assert time.perf_counter() - start < 1.0  # ~0.03 s here; generous for slow CI machines
    assert page.count("<audio") == 2000


def test_report_command(project, tmp_path):
    proc = project.run("report", check=False)
    assert proc.returncode == 2 and "run `assetbuild build` first" in proc.stderr
    assert "Traceback" not in proc.stderr
    project.build()
    proc = project.run("report")
    assert proc.returncode == 0 and proc.stdout.strip() == str((project.out / "report.html").resolve())
    opener = tmp_path / "opener.py"
    opener.write_text("import sys, pathlib\npathlib.Path(sys.argv[1]).write_text(sys.argv[2])\n")
    opened = tmp_path / "opened.txt"
    proc = project.run("report", "--open", env={"BROWSER": f"{sys.executable} {opener} {opened} %s"})
    assert proc.returncode == 0, proc.stderr
    assert opened.read_text() == (project.out / "report.html").resolve().as_uri()


# -- in a real browser --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
WINDOW = (1000, 700)


def chromium(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--force-color-profile=srgb", "--blink-settings=preferredColorScheme=1",  # light scheme
         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=5000", *args, url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (log lines of every level, uncaught errors, failed loads)."""
    return re.findall(r":CONSOLE[^\]]*\] (.*)", stderr)


def read_png(path: Path) -> tuple[int, int, list[bytearray]]:
    """(width, height, rows of RGB bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif kind == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif kind == 3:
            for i in range(stride):
                row[i] = (row[i] + ((row[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(row)
        prev = row
    if bpp == 4:  # drop alpha: rows of RGB
        rows = [bytearray(b"".join(r[i:i + 3] for i in range(0, stride, 4))) for r in rows]
    return width, height, rows


@needs_chromium
def test_report_in_headless_chromium(localised_out, tmp_path):
    doc = json.loads((localised_out / "assetpack.json").read_text())
    page = _page(localised_out)
    first = doc["assets"][0]
    assert first["kind"] == "dialogue" and len(first["words"]) >= 3
    word = first["words"][2]

    # The page as built, plus a probe run once it is laid out: highlight the third word as if the
    # first player were at that word's midpoint, and note where the first waveform is drawn.
    probe = ("<script>addEventListener('load',function(){setTimeout(function(){var a=document.querySelector('.asset audio');"
             f"var on=window.assetReport.highlight(a,{(word['start'] + word['end']) / 2});"
             "var w=a.closest('.asset').querySelector('.w.on');var r=document.querySelector('svg.wave').getBoundingClientRect();"
             "document.body.setAttribute('data-probe',JSON.stringify({on:on,word:w&&w.textContent,"
             "rect:[r.left,r.top,r.width,r.height]}));},100);});</script>")
    copy = tmp_path / "probe.html"
    copy.write_text(page.replace("</body>", probe + "</body>").replace(
        "<head>", f'<head><base href="{localised_out.as_uri()}/">', 1), encoding="utf-8")
    proc = chromium(copy.as_uri(), tmp_path, "--dump-dom")
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    root = re.search(r"<html[^>]*>", dom).group(0)  # the page's error hook writes data-errors here
    assert 'data-ready="1"' in root and "data-errors" not in root, root
    assert dom.count("<audio") == len(doc["assets"])
    found = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    assert found["on"] == 2 and found["word"] == word["text"]
    left, top, width, height = found["rect"]
    assert width > 200 and height > 20 and top + height < WINDOW[1]

    # The report itself: no console output at all, and the first waveform visibly drawn where
    # the probe found it.
    shot = tmp_path / "shot.png"
    proc = chromium((localised_out / "report.html").as_uri(), tmp_path, f"--screenshot={shot}")
    assert console_messages(proc.stderr) == []
    w, h, rows = read_png(shot)
    assert (w, h) == WINDOW
    wave = bytes.fromhex(report.WAVE_LIGHT[1:])
    inside = [rows[y][3 * x:3 * x + 3] == wave for y in range(int(top) + 1, int(top + height) - 1)
              for x in range(int(left) + 1, int(left + width) - 1)]
    assert sum(inside) / len(inside) > 0.1  # speech: peaks and a centre line
    # The centre line is drawn even where the line is silent: every column has the colour there.
    mid = round(top + height / 2)
    columns = [any(rows[y][3 * x:3 * x + 3] == wave for y in range(mid - 2, mid + 3))
               for x in range(int(left) + 1, int(left + width) - 1)]
    assert all(columns), (found["rect"], columns.index(False))
    # ... and nowhere above it (the header): the colour is the waveform's alone.
    assert not any(rows[y][i:i + 3] == wave for y in range(int(top) - 5) for i in range(0, 3 * w, 3))
