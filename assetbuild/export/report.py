"""``<output>/report.html``: a self-contained page for listening to and checking a build.

One HTML file with inline CSS, JS and SVG (nothing fetched from the network), beside
assetpack.json, so it opens from disk and travels in packs. Per asset: a player (relative
``src``, ``preload="none"`` so thousands of assets open fast), a waveform, duration, loudness
and true peak against their targets, loop points, whether this build generated, re-processed
or reused it, and for dialogue the line with the current word highlighted while it plays.

Waveforms are min/max peaks over ~256 columns, turned into an SVG path once and cached by the
audio file's sha256 (``<project>/.assetbuild/waveforms/ab/ab12....json``): a rebuild reads
only the files whose bytes are new, and rendering is string joining.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..fsutil import write_if_changed
from .metadata import REPORT

COLUMNS = 256  # waveform columns (at most)
HEIGHT = 64  # waveform height in SVG units; the centre line is HEIGHT / 2
WAVE_FORMAT = 1  # bump when the cached waveform changes meaning
WAVE_LIGHT = "#3478c6"  # waveform fill, light scheme: no other element uses it (tests look for it)
WAVE_DARK = "#6fa8f0"

KINDS = ("dialogue", "ambience", "music", "sfx")
TITLES = {"dialogue": "Dialogue", "ambience": "Ambience", "music": "Music", "sfx": "Sound effects"}
STATUS_LABELS = {"generated": "generated", "processed": "re-processed", "reused": "reused",
                 "failed": "failed: previous output kept"}

Waveform = dict[str, Any]  # {"columns": n, "step": frames per column, "d": SVG path}
_SHA = re.compile("[0-9a-f]{64}").fullmatch
_URL_SAFE = re.compile("[A-Za-z0-9_./-]*").fullmatch


# -- waveforms ---------------------------------------------------------------------------------

def compute_waveform(path: Path, columns: int = COLUMNS) -> Waveform:
    """Min/max peaks of an audio file over at most ``columns`` columns, as an SVG path.

    The file is read in blocks (a whole number of columns each), so memory stays small for long
    beds. Channels are merged: a column spans the lowest and highest sample of any channel.
    """
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        frames = f.frames
        step = max(1, -(-frames // columns))
        per_block = max(1, (1 << 16) // step)  # columns per read
        lows: list[Any] = []
        highs: list[Any] = []
        while True:
            data = f.read(per_block * step, dtype="float32", always_2d=True)
            if not len(data):
                break
            lo, hi = data.min(axis=1), data.max(axis=1)
            n = -(-len(lo) // step)
            pad = n * step - len(lo)
            if pad:
                lo, hi = np.pad(lo, (0, pad), mode="edge"), np.pad(hi, (0, pad), mode="edge")
            lows.append(lo.reshape(n, step).min(axis=1))
            highs.append(hi.reshape(n, step).max(axis=1))
    if not lows:
        return {"columns": 0, "step": step, "d": ""}
    lo, hi = np.concatenate(lows), np.concatenate(highs)
    mid = HEIGHT // 2
    # Integer rows, at least one unit either side of the centre so silence still shows a line.
    top = np.clip(np.rint(mid - np.clip(hi, -1, 1) * mid), 0, mid - 1).astype(int).tolist()
    bottom = np.clip(np.rint(mid - np.clip(lo, -1, 1) * mid), mid + 1, HEIGHT).astype(int).tolist()
    return {"columns": len(top), "step": step, "d": _outline(top, bottom)}


def _outline(top: list[int], bottom: list[int]) -> str:
    """A closed step outline: along the tops left to right, back along the bottoms."""
    parts = [f"M0 {top[0]}"]
    for rows, sign in ((top, ""), (bottom[::-1], "-")):
        run, last = 0, rows[0]
        if sign:
            parts.append(f"V{last}")
        for y in rows:
            if y != last:
                parts.append(f"h{sign}{run}V{y}")
                run, last = 0, y
            run += 1
        parts.append(f"h{sign}{run}")
    parts.append("Z")
    return "".join(parts)


def _cache_file(cache_dir: Path, sha: str) -> Path:
    return cache_dir / sha[:2] / f"{sha}.json"


def _read_cached(path: str) -> Waveform | None:
    try:
        with open(path, "rb") as f:
            w = json.loads(f.read())
        d = w["d"]
        # Written by us, but the path is pasted into the page: refuse anything that is not one.
        if w.get("v") != WAVE_FORMAT or not isinstance(d, str) or any(c in d for c in '<>&"\''):
            return None
        return {"columns": int(w["columns"]), "step": int(w["step"]), "d": d}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cached(path: Path, wave: Waveform) -> None:
    # Temp file + rename: a reader sees the whole entry or none. No fsync: an entry lost in a
    # crash is only recomputed, and 10,000 fsyncs would make a first build crawl.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps({"v": WAVE_FORMAT, **wave}, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def waveforms(out_dir: Path, assets: Iterable[dict[str, Any]], cache_dir: Path) -> dict[str, Waveform]:
    """Waveform per sha256 of the given asset records: from the cache, or computed from the
    asset's file (then cached). An asset whose file cannot be read has none."""
    found: dict[str, Waveform] = {}
    missing: dict[str, Path] = {}
    root = os.fspath(cache_dir)
    for r in assets:
        sha, file = r.get("sha256"), r.get("file")
        if not isinstance(sha, str) or not file or sha in found or sha in missing or not _SHA(sha):
            continue
        wave = _read_cached(f"{root}/{sha[:2]}/{sha}.json")
        if wave is None:
            missing[sha] = out_dir / file
        else:
            found[sha] = wave

    def compute(item: tuple[str, Path]) -> tuple[str, Waveform | None]:
        sha, path = item
        try:
            wave = compute_waveform(path)
        except Exception:  # unreadable or gone: no picture, try again next build
            return sha, None
        try:
            _write_cached(_cache_file(cache_dir, sha), wave)
        except OSError:
            pass
        return sha, wave

    if len(missing) > 4:
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            computed = list(pool.map(compute, missing.items()))
    else:
        computed = [compute(item) for item in missing.items()]
    found.update((sha, w) for sha, w in computed if w is not None)
    return found


# -- the page ----------------------------------------------------------------------------------

def _key(r: dict[str, Any]) -> str:
    return f"{r['locale']}/{r['id']}" if r.get("locale") else r["id"]


def _e(value: Any) -> str:
    """html.escape, skipped for the common text that needs none (render speed)."""
    s = value if isinstance(value, str) else str(value)
    if "&" in s or "<" in s or ">" in s or '"' in s or "'" in s:
        return escape(s)
    return s


def _num(value: Any, fmt: str, unit: str = "") -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return f"{value:{fmt}}{unit}"
        except ValueError:  # e.g. a float where frames were expected
            return f"{value}{unit}"
    return "\u2013"


def _words(text: str, words: list[dict[str, Any]]) -> str:
    """The line with one span per timed word; timings go in one attribute (start end ...)."""
    out, times, pos, n = [], [], 0, len(text)
    e = _e if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text else str
    for w in words:
        try:
            a, b = w["span"]
            times.append(f"{float(w['start'])} {float(w['end'])}")
        except (KeyError, TypeError, ValueError):
            continue
        if not (type(a) is int and type(b) is int and pos <= a < b <= n):
            times.pop()
            continue
        out.append(f'{e(text[pos:a])}<span class="w">{e(text[a:b])}</span>')
        pos = b
    out.append(e(text[pos:]))
    return f'<p class="words" data-t="{" ".join(times)}">{"".join(out)}</p>'


def _wave_svg(wave: Waveform | None, loop: Any) -> str:
    if not wave or not wave["columns"]:
        return '<div class="wave none">no waveform</div>'
    cols, step = wave["columns"], wave["step"]
    marks = ""
    if isinstance(loop, dict) and isinstance(loop.get("start"), int) and isinstance(loop.get("end"), int):
        # The loop is [start, end] in frames, end inclusive: markers at start and after end.
        xs = [min(max(f / step, 0.25), cols - 0.25) for f in (loop["start"], loop["end"] + 1)]
        marks = f'<path class="loop" d="M{xs[0]:.2f} 0V{HEIGHT}M{xs[1]:.2f} 0V{HEIGHT}"/>'
    return (f'<svg class="wave" viewBox="0 0 {cols} {HEIGHT}" preserveAspectRatio="none" role="img" '
            f'aria-label="waveform"><path class="peaks" d="{wave["d"]}"/>{marks}</svg>')


def _measures(r: dict[str, Any]) -> str:
    try:  # the usual record: plain numbers (formatted inline: this runs once per asset)
        return (f"<dt>duration</dt><dd>{r['duration']:.2f} s</dd>"
                f"<dt>loudness</dt><dd>{r['loudness']:.1f} LUFS <small>target {r['loudness_target']:.1f}, "
                f"{_e(r['loudness_mode'])}</small></dd><dt>true peak</dt><dd>{r['true_peak']:.1f} dBTP "
                f"<small>ceiling {r['true_peak_ceiling']:.1f}</small></dd>")
    except (KeyError, TypeError, ValueError):  # a field missing or null
        get = r.get
        mode = get("loudness_mode")
        return (f"<dt>duration</dt><dd>{_num(get('duration'), '.2f', ' s')}</dd>"
                f"<dt>loudness</dt><dd>{_num(get('loudness'), '.1f', ' LUFS')} "
                f"<small>target {_num(get('loudness_target'), '.1f')}{', ' + _e(mode) if mode else ''}</small></dd>"
                f"<dt>true peak</dt><dd>{_num(get('true_peak'), '.1f', ' dBTP')} "
                f"<small>ceiling {_num(get('true_peak_ceiling'), '.1f')}</small></dd>")


def _asset(r: dict[str, Any], key: str, status: str, wave: Waveform | None) -> str:
    get = r.get
    file = get("file") or ""
    badges = f'<span class="badge st-{_e(status)}">{STATUS_LABELS.get(status) or _e(status)}</span>'
    warnings = get("warnings")
    problem = status == "failed" or bool(warnings)
    if get("target_met") is False:
        badges += '<span class="badge bad">target not met</span>'
        problem = True
    name = _e(get("id", ""))
    if get("locale"):
        name += f' <span class="loc">{_e(r["locale"])}</span>'
    if get("fallback_from"):
        name += f' <span class="loc">from {_e(r["fallback_from"])}</span>'
    facts = _measures(r)
    loop = get("loop")
    if isinstance(loop, dict):
        facts += f"<dt>loop</dt><dd>{_num(loop.get('start'), 'd')}\u2013{_num(loop.get('end'), 'd')}</dd>"
    if get("group"):
        facts += f"<dt>take</dt><dd>{_e(r['group'])} #{_num(get('take'), 'd')}</dd>"
    if get("speaker"):
        facts += f"<dt>speaker</dt><dd>{_e(r['speaker'])}</dd>"
    if get("kind") == "dialogue":
        body = _words(str(get("text") or ""), get("words") or [])
    else:
        body = f'<p class="prompt">{_e(get("prompt") or "")}</p>'
    if warnings:
        body += "".join(f'<p class="warn">{_e(w)}</p>' for w in warnings)
    k = _e(key)
    return (f'<article class="asset" id="a-{k}" data-k="{k.lower()}"{" data-problem" if problem else ""}>'
            f'<div class="head"><span class="name">{name}</span>{badges}</div>'
            f'<audio controls preload="none" src="{file if _URL_SAFE(file) else quote(file)}"></audio>'
            f'{_wave_svg(wave, loop)}'
            f'<dl>{facts}<dt>file</dt><dd class="file">{_e(file)}</dd></dl>{body}</article>')


def _sequence(r: dict[str, Any]) -> str:
    """A mixed sequence: its player, measures, stems and cue sheet."""
    get = r.get
    file = get("file") or ""
    badges = '<span class="badge bad">target not met</span>' if get("target_met") is False else ""
    stems = " ".join(f'<a href="{quote(path)}">{_e(bus)}</a>' for bus, path in (get("stems") or {}).items())
    facts = (f"<dt>duration</dt><dd>{_num(get('duration'), '.2f', ' s')}</dd>"
             f"<dt>loudness</dt><dd>{_num(get('loudness'), '.1f', ' LUFS')} "
             f"<small>target {_num(get('loudness_target'), '.1f')}</small></dd>"
             f"<dt>true peak</dt><dd>{_num(get('true_peak'), '.1f', ' dBTP')} "
             f"<small>ceiling {_num(get('true_peak_ceiling'), '.1f')}</small></dd>"
             + (f"<dt>stems</dt><dd>{stems}</dd>" if stems else ""))
    rows = "".join(f"<tr><td>{_num(c.get('start'), '.3f')}</td><td>{_num(c.get('end'), '.3f')}</td>"
                   f"<td>{_e(c.get('event', ''))}</td><td>{_e(c.get('bus', ''))}</td>"
                   f"<td>{_e(c.get('asset', ''))}</td></tr>"
                   for c in sorted(get("cues") or [], key=lambda c: (c.get("start") or 0, str(c.get("event")))))
    k = _e(get("id", ""))
    return (f'<article class="asset" id="s-{k}" data-k="{k.lower()}"'
            f'{" data-problem" if badges else ""}><div class="head"><span class="name">{k}</span>{badges}</div>'
            f'<audio controls preload="none" src="{quote(file)}"></audio>'
            f'<dl>{facts}<dt>file</dt><dd class="file">{_e(file)}</dd></dl>'
            f'<table class="cues"><tr><th>start</th><th>end</th><th>event</th><th>bus</th><th>asset</th></tr>'
            f'{rows}</table></article>')


def render(doc: dict[str, Any], out_dir: Path, status: Mapping[str, str], failures: list[dict[str, Any]],
           waveforms: Mapping[str, Waveform]) -> str:
    """The report page for an assetpack.json document.

    ``out_dir`` is the folder the page is written to (asset paths in ``doc`` are relative to it);
    ``status`` maps an asset key (``id``, or ``locale/id``) to generated / processed / reused /
    failed; ``failures`` are the build's ``{id, error}``; ``waveforms`` maps sha256 to a waveform
    from :func:`waveforms`.
    """
    project = doc.get("project") or {}
    assets = [r for r in doc.get("assets", []) if isinstance(r, dict) and "id" in r]
    by_kind: dict[str, list[str]] = {}
    counts = dict.fromkeys(STATUS_LABELS, 0)
    unmet = 0
    for r in assets:
        key = _key(r)
        st = status.get(key, "reused")
        counts[st] = counts.get(st, 0) + 1
        unmet += r.get("target_met") is False
        by_kind.setdefault(r.get("kind", "other"), []).append(_asset(r, key, st, waveforms.get(r.get("sha256", ""))))
    title = f"{project.get('name', '')} {project.get('version', '')}".strip() or "assetbuild"
    keys = {_key(r) for r in assets}
    parts = [_HEAD.replace("{title}", escape(title)),
             f'<header><h1>{escape(title)} <small>{escape(out_dir.name)}</small></h1><p class="sum">'
             f'{len(assets)} assets: {counts["generated"]} generated, {counts["processed"]} re-processed, '
             f'{counts["reused"]} reused'
             + (f', <b class="bad-t">{len(failures)} failed</b>' if failures else "")
             + (f', <b class="bad-t">{unmet} missed their loudness target</b>' if unmet else "")
             + '</p><nav>']
    kinds = [k for k in KINDS if k in by_kind] + sorted(set(by_kind) - set(KINDS))
    parts += [f'<a href="#{escape(k)}">{escape(TITLES.get(k, k))} ({len(by_kind[k])})</a>' for k in kinds]
    if doc.get("sequences"):
        parts.append(f'<a href="#sequences">Sequences ({len(doc["sequences"])})</a>')
    parts.append('<label><input type="search" id="q" placeholder="filter by id"></label>'
                 '<label><input type="checkbox" id="problems"> problems only</label></nav></header>')
    if failures:
        parts.append(f'<section class="failures" id="failures"><h2>Failures ({len(failures)})</h2><ul>')
        for f in failures:
            fid = str(f.get("id", ""))
            label = (f'<a href="#a-{escape(quote(fid))}">{escape(fid)}</a>' if fid in keys else escape(fid))
            parts.append(f"<li><b>{label}</b>: {escape(str(f.get('error', '')))}</li>")
        parts.append("</ul></section>")
    for k in kinds:
        parts.append(f'<section id="{escape(k)}"><h2>{escape(TITLES.get(k, k))}</h2>')
        parts += by_kind[k]
        parts.append("</section>")
    sequences = [r for r in doc.get("sequences", []) if isinstance(r, dict) and "id" in r]
    if sequences:
        parts.append('<section id="sequences"><h2>Sequences</h2>')
        parts += [_sequence(r) for r in sequences]
        parts.append("</section>")
    if not assets:
        parts.append('<p class="empty">No assets in this build.</p>')
    parts.append(_TAIL)
    return "".join(parts)


def write(out_dir: Path, doc: dict[str, Any], status: Mapping[str, str], failures: list[dict[str, Any]],
          cache_dir: Path) -> Path:
    """Write ``<out_dir>/report.html`` (only when its text changed); returns its path."""
    waves = waveforms(out_dir, doc.get("assets", []), cache_dir)
    path = out_dir / REPORT
    write_if_changed(path, render(doc, out_dir, status, failures, waves))
    return path


# %-formatting: the CSS is full of braces.
_CSS = """
:root{color-scheme:light dark;--bg:#fafafa;--fg:#1d1d1f;--mute:#6b6b70;--card:#fff;--line:#e2e2e6;
--wave:%(light)s;--loop:#d2691e;--ok:#1f8a4c;--proc:#5a4fcf;--bad:#c62828;--hl:#ffe28a}
@media (prefers-color-scheme:dark){:root{--bg:#17171a;--fg:#e8e8ea;--mute:#9a9aa2;--card:#212126;
--line:#34343a;--wave:%(dark)s;--loop:#f0a050;--ok:#4cc27e;--proc:#a49cff;--bad:#ff6b6b;--hl:#6b5a12}}
*{box-sizing:border-box}
table.cues{border-collapse:collapse;font-size:.85em;margin-top:6px}
table.cues td,table.cues th{padding:1px 10px 1px 0;text-align:left;font-variant-numeric:tabular-nums}
body{margin:0;padding:0 16px 32px;background:var(--bg);color:var(--fg);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
header{position:sticky;top:0;background:var(--bg);padding:10px 0 8px;border-bottom:1px solid var(--line);z-index:1}
h1{font-size:20px;margin:0}h1 small{color:var(--mute);font-weight:normal;font-size:14px}
h2{font-size:16px;margin:20px 0 8px}
.sum{margin:4px 0}nav{display:flex;flex-wrap:wrap;gap:12px;align-items:center}nav a{color:var(--proc)}
input[type=search]{padding:2px 6px}
.failures{border:1px solid var(--bad);border-radius:6px;padding:0 12px;margin-top:12px}
.failures h2{color:var(--bad)}.bad-t{color:var(--bad)}
.asset{display:grid;grid-template-columns:minmax(240px,1fr) minmax(260px,2fr);gap:4px 16px;
background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:6px 0;
content-visibility:auto;contain-intrinsic-size:auto 150px}
.asset[data-problem]{border-left:4px solid var(--bad)}
.head{grid-column:1/-1;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.name{font-weight:600}.loc{color:var(--mute);font-weight:normal}
.badge{font-size:12px;padding:0 6px;border-radius:8px;border:1px solid currentColor}
.st-generated{color:var(--ok)}.st-processed{color:var(--proc)}.st-reused{color:var(--mute)}
.st-failed,.bad{color:var(--bad);font-weight:600}
audio{width:100%%;height:32px}
.wave{width:100%%;height:48px;display:block}.wave .peaks{fill:var(--wave);shape-rendering:crispEdges}
.wave .loop{stroke:var(--loop);stroke-width:2;stroke-dasharray:4 3;vector-effect:non-scaling-stroke}
.wave.none{color:var(--mute);font-size:12px;line-height:48px}
dl{grid-column:1;grid-row:2/span 2;display:grid;grid-template-columns:auto 1fr;gap:0 10px;margin:0;font-size:13px}
dt{color:var(--mute)}dd{margin:0}dd small{color:var(--mute)}.file{word-break:break-all}
.words,.prompt,.warn{grid-column:1/-1;margin:2px 0}.prompt{color:var(--mute);font-style:italic}
.warn{color:var(--bad);font-size:13px}
.w{border-radius:3px}.w.on{background:var(--hl)}
[hidden]{display:none!important}
""" % {"light": WAVE_LIGHT, "dark": WAVE_DARK}  # noqa: UP031

# Word highlighting: one rAF loop for the playing player; other players pause when one starts.
_JS = """
(function(){"use strict";
var cur=null,raf=0;
function words(a){var art=a.closest(".asset"),p=art&&art.querySelector(".words");if(!p)return null;
if(!p._t){var s=p.getAttribute("data-t");p._t=s?s.split(" ").map(Number):[];p._w=p.querySelectorAll(".w");p._on=-1;}
return p;}
function highlight(a,t){var p=words(a);if(!p)return -1;var ts=p._t,ws=p._w,on=-1;
for(var i=0;i<ws.length&&ts[2*i]<=t;i++){on=i;}
if(on>=0&&t>ts[2*on+1]+0.3)on=-1;
if(on!==p._on){if(p._on>=0)ws[p._on].classList.remove("on");if(on>=0)ws[on].classList.add("on");p._on=on;}
return on;}
function tick(){if(cur&&!cur.paused){highlight(cur,cur.currentTime);raf=requestAnimationFrame(tick);}}
function media(e){return e.target&&e.target.tagName==="AUDIO"?e.target:null;}
document.addEventListener("play",function(e){var a=media(e);if(!a)return;
if(cur&&cur!==a&&!cur.paused)cur.pause();cur=a;cancelAnimationFrame(raf);raf=requestAnimationFrame(tick);},true);
["pause","seeked","timeupdate"].forEach(function(n){document.addEventListener(n,function(e){var a=media(e);
if(a)highlight(a,a.currentTime);},true);});
document.addEventListener("ended",function(e){var a=media(e);if(a)highlight(a,-1);},true);
var q=document.getElementById("q"),pr=document.getElementById("problems");
function filter(){var s=q.value.trim().toLowerCase(),only=pr.checked,all=document.querySelectorAll(".asset");
for(var i=0;i<all.length;i++){var el=all[i];
el.hidden=!!(s&&el.getAttribute("data-k").indexOf(s)<0)||(only&&!el.hasAttribute("data-problem"));}}
q.addEventListener("input",filter);pr.addEventListener("change",filter);
window.assetReport={highlight:highlight};
document.documentElement.setAttribute("data-ready","1");
})();
"""

# Errors are recorded on <html data-errors> (the tests read them back from the DOM).
_HEAD = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width,initial-scale=1">'
         '<title>{title}: audio report</title>'
         '<script>window.addEventListener("error",function(e){var h=document.documentElement;'
         'h.setAttribute("data-errors",(h.getAttribute("data-errors")||"")+(e.message||"error")+"\\n");});'
         '</script><style>' + _CSS + '</style></head><body>')
_TAIL = "<script>" + _JS + "</script></body></html>\n"
