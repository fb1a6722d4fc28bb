"""`assetbuild watch`: rebuild what changed whenever the manifest or one of its inputs changes.

What is watched (docs/watch.md): every manifest file read (the main one and its includes), the
folders an ``include`` glob could match a new file in, and the input files the manifest names
(see ``input_files``). Events are filtered down to those paths and debounced, so an editor's
save dance (write a temp file, rename it over the original, delete a backup) gives one rebuild.

Each rebuild reloads the manifest and runs an ordinary incremental ``pipeline.run.build``: the
lockfile and the cache decide what to regenerate, exactly as ``assetbuild build`` would. What
``watch`` adds is a worker pool that lives as long as the watch (workers keep numpy, scipy and
the loaded backends between rebuilds; starting one costs most of a second), heavy models kept
loaded, and one summary per rebuild. A manifest with errors is reported and the last good
output is left alone.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import UsageError

if TYPE_CHECKING:
    from .pipeline.executor import LocalExecutor

DEBOUNCE = 0.1  # seconds of quiet after the last event before rebuilding
MAX_WAIT = 1.0  # a steady stream of events still rebuilds this long after the first one
BUSY_RETRY = 1.0  # another build holds the project: try again after this long

# Names editors and downloaders write beside the real file; never a reason to rebuild.
_TEMP_NAME = re.compile(r"(^\.#|^#.*#$|~$|\.(swp|swx|swo|tmp|part|crdownload|bak)$|^\d+$)")
_MAGIC = set("*?[")
_PATHLIKE = re.compile(r"[^\r\n\t\"<>|]{1,255}")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")


# -- what to watch ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Targets:
    """The paths whose changes matter, and the folders to watch for them."""

    files: frozenset[str] = frozenset()  # manifest files and input files (absolute)
    patterns: tuple[str, ...] = ()  # absolute include globs
    ignore: tuple[str, ...] = ()  # folders whose events never matter (outputs, .assetbuild)
    watches: dict[str, bool] = field(default_factory=dict)  # folder -> recursive

    def relevant(self, path: str, is_directory: bool = False) -> bool:
        """Whether a change to ``path`` (created, changed, deleted or renamed; for a folder:
        created, deleted or renamed) can change the build."""
        path = os.path.normpath(path)
        if path in self.files and not is_directory:  # even with the output folder beside it
            return True
        if any(path == d or path.startswith(d + os.sep) for d in self.ignore):
            return False
        if is_directory:
            # A folder on the way to a glob's base (which may not exist yet), or under it.
            return any(path == b or b.startswith(path + os.sep) or path.startswith(b + os.sep)
                       for b in map(_base, self.patterns))
        return not _TEMP_NAME.search(os.path.basename(path)) and any(glob_match(p, path) for p in self.patterns)


def targets_of(manifest: Any, cache_root: Path | None = None) -> Targets:
    """What to watch for a loaded manifest: its sources, its include globs, its input files."""
    from .pipeline.state import lock_path

    files = {os.path.normpath(p) for p in manifest.sources} | {str(p) for p in input_files(manifest)}
    ignore = [manifest.output_dir, manifest.root / ".assetbuild"] + ([cache_root] if cache_root else [])
    return _targets(files, list(manifest.include_patterns), [str(Path(p).resolve()) for p in ignore],
                    extra_ignored=[str(lock_path(manifest.root, manifest.profile))])


def _targets(files: set[str], patterns: list[str], ignore: list[str], extra_ignored: Sequence[str] = ()) -> Targets:
    watches: dict[str, bool] = {}
    for f in files:
        watches[os.path.dirname(f)] = watches.get(os.path.dirname(f), False)
    for p in patterns:
        base = _base(p)
        rest = os.path.relpath(p, base).split(os.sep)
        recursive = len(rest) > 1 or "**" in rest
        while not os.path.isdir(base):  # watch the nearest folder that exists, for the next one down
            parent = os.path.dirname(base)
            if parent == base:
                break
            base, recursive = parent, False
        watches[base] = watches.get(base, False) or recursive
    # A folder under a recursive watch needs no watch of its own.
    covered = {d: r for d, r in watches.items()
               if not any(r2 and d != d2 and d.startswith(d2 + os.sep) for d2, r2 in watches.items())}
    return Targets(frozenset(files) - frozenset(extra_ignored), tuple(patterns), tuple(ignore) + tuple(extra_ignored),
                   covered)


def event_handler(callback: Callable[[Any], None]) -> Any:
    """A watchdog handler that passes every event to ``callback`` (watchdog is imported here,
    when a watch starts)."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            callback(event)

    return Handler()


def reschedule(observer: Any, handler: Any, watches: dict[tuple[str, bool], Any], targets: Targets,
               on_error: Any = lambda folder, exc: None) -> bool:
    """Make ``observer`` watch exactly ``targets``' folders (``watches``: what it watches now,
    updated). Returns whether a folder was newly put under watch."""
    wanted = set(targets.watches.items())
    for key in set(watches) - wanted:
        try:
            observer.unschedule(watches.pop(key))
        except (KeyError, OSError):
            pass
    added = False
    for folder, recursive in sorted(wanted - set(watches)):
        try:
            watches[(folder, recursive)] = observer.schedule(handler, folder, recursive=recursive)
            added = True
        except OSError as exc:  # e.g. gone again, or out of inotify watches
            on_error(folder, exc)
    return added


def _base(pattern: str) -> str:
    """A glob's leading folders without wildcards."""
    parts = pattern.split(os.sep)
    i = next((i for i, part in enumerate(parts) if _MAGIC & set(part)), len(parts) - 1)
    return os.sep.join(parts[:i]) or os.sep


def glob_match(pattern: str, path: str) -> bool:
    """Whether ``glob.glob(pattern, recursive=True)`` would list ``path`` (a file): ``*`` and
    ``?`` stay within a folder, ``**`` spans folders, and names starting with a dot are only
    matched by a pattern part that starts with one."""
    pp, fp = pattern.split(os.sep), os.path.normpath(path).split(os.sep)

    def match(i: int, j: int) -> bool:
        if i == len(pp):
            return j == len(fp)
        if pp[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(fp))
                       if all(not name.startswith(".") for name in fp[j:k]))
        if j == len(fp):
            return False
        name = fp[j]
        if name.startswith(".") and not pp[i].startswith(".") and _MAGIC & set(pp[i]):
            return False
        return fnmatch.fnmatchcase(name, pp[i]) and match(i + 1, j + 1)

    return match(0, 0)


def input_files(manifest: Any) -> set[Path]:
    """Existing files the manifest names in asset or voice values (reference audio, voice
    presets): every string value, or string in a list, that looks like a path (has a ``/`` or
    ends in an extension) and names an existing file, absolute or relative to the manifest's
    folder. No built-in backend reads files today; a backend that does must also put the
    file's content (or hash) into its generate inputs so that a change rebuilds."""
    found: set[Path] = set()
    seen: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            if value in seen:
                return
            seen.add(value)
            if ("/" in value or _SUFFIX.search(value)) and "://" not in value and _PATHLIKE.fullmatch(value):
                path = Path(value).expanduser()
                path = path if path.is_absolute() else manifest.root / path
                try:
                    if path.is_file():
                        found.add(Path(os.path.abspath(path)))
                except OSError:
                    pass
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)

    for voice in manifest.voices.values():
        visit(voice)
    for asset in manifest.assets:
        visit(asset.values)
        visit(asset.settings)
    return found


def _sources_despite_errors(path: Path) -> set[str]:
    """The manifest files a broken manifest reads, as far as they can be found, so that a fix
    in any of them is noticed."""
    from .manifest import include
    from .manifest.load import read_toml

    try:
        raw, data = read_toml(path, str(path))
        return {os.path.normpath(p) for p in include.read(path.resolve(), str(path), raw, data).files}
    except Exception:  # a broken main manifest: only it
        return {os.path.normpath(path.resolve())}


# -- the watch ----------------------------------------------------------------------------------

@dataclass
class Settings:
    manifest: Path
    profile: str | None = None
    cache_dir: Path | None = None
    jobs: int = 0
    copy: bool = False
    as_json: bool = False
    quiet: bool = False
    debounce: float = DEBOUNCE


class Watch:
    def __init__(self, settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr):
        self.s, self.out, self.err = settings, out, err
        self.path = Path(settings.manifest)
        self.jobs = settings.jobs or os.cpu_count() or 1
        self.executor: LocalExecutor | None = None
        self.observer: Any = None
        self._handler: Any = None
        self.watches: dict[tuple[str, bool], Any] = {}
        self.targets = _targets({os.path.normpath(self.path.resolve())}, [], [])
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pending: set[str] = set()
        self.first_event = 0.0
        self.last_event = 0.0
        self.good: Any = None  # the last manifest that loaded
        self.warned: list[str] = []
        self.interrupted = False  # by a signal during a build
        self.busy = False  # another build held the project at the last try
        self.retry_at: float | None = None
        self.backends: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from watchdog.observers import Observer

        if not self.path.is_file():
            from .errors import Problem

            raise UsageError([Problem(str(self.path), "", "no such manifest (create one with `assetbuild init`)")])
        self.observer = Observer()
        self.observer.start()
        self._apply_watches()
        # The pool starts with the first manifest that loads, so its workers load its backends.

    def close(self) -> None:
        """Stop watching and the workers; remove what an interrupted build left in temp files."""
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
        interrupted = self.interrupted
        self._stop_executor()  # frees the heavy models too
        if interrupted and self.good is not None:
            # Workers are gone, so their temp files in the cache are leftovers now.
            from .fsutil import remove_temps
            from .pipeline.cache import Cache

            Cache(self._cache_root(self.good)).clean_tmp()
            remove_temps(self.good.output_dir, os.getpid())

    def run(self) -> None:
        """Build once, then rebuild on every change until interrupted (KeyboardInterrupt)."""
        self._say_watching()
        self.rebuild([], time.monotonic())
        while True:
            trigger, since = self._next_change()
            self.rebuild(trigger, since)

    # -- events ------------------------------------------------------------------------------
    def on_event(self, event: Any) -> None:  # watchdog's thread
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type not in ("created", "deleted", "moved"):
            return  # a folder's own time stamps change whenever a file in it does
        targets = self.targets
        paths = [event.src_path] + ([event.dest_path] if event.event_type == "moved" else [])
        hits = [os.fsdecode(p) for p in paths if p and targets.relevant(os.fsdecode(p), event.is_directory)]
        if not hits:
            return
        self._add_pending(hits)

    def _add_pending(self, paths: Any) -> None:
        """Note changed paths (from watchdog's thread or ours) and wake the rebuild loop."""
        now = time.monotonic()
        with self.lock:
            if not self.pending:
                self.first_event = now
            self.pending.update(paths)
            self.last_event = now
        self.wake.set()

    def _next_change(self) -> tuple[list[str], float]:
        """Wait for relevant events, then for them to settle; return the paths and when the
        first one came."""
        while True:
            timeout = 0.5 if self.retry_at is None else max(0.0, min(0.5, self.retry_at - time.monotonic()))
            self.wake.wait(timeout)  # timed: Ctrl-C gets through
            if self.retry_at is not None and time.monotonic() >= self.retry_at:
                self.retry_at = None
                with self.lock:
                    paths, self.pending = self.pending, set()
                    self.wake.clear()
                return sorted(paths), time.monotonic()
            if not self.wake.is_set():
                continue
            while True:
                with self.lock:
                    now = time.monotonic()
                    quiet = self.last_event + self.s.debounce - now
                    limit = self.first_event + max(MAX_WAIT, self.s.debounce) - now
                    if quiet <= 0 or limit <= 0:
                        paths, since = self.pending, self.first_event
                        self.pending = set()
                        self.wake.clear()
                        break
                time.sleep(max(0.005, min(quiet, limit)))
            if paths:
                return sorted(paths), since

    # -- one rebuild -------------------------------------------------------------------------
    def rebuild(self, trigger: list[str], since: float) -> None:
        from .errors import ProjectBusy
        from .manifest import load
        from .pipeline.run import Options
        from .pipeline.run import build as run_build

        shown = [self._shown(p) for p in trigger]
        try:
            manifest = load(self.path, profile=self.s.profile)
        except UsageError as exc:
            self._set_targets(self._targets_on_error())
            self._report_errors(shown, exc.problems, since)
            return
        self.good = manifest
        cache_root = self._cache_root(manifest)
        if self._set_targets(targets_of(manifest, cache_root)):
            self._catch_up(manifest)
        self._warnings([str(w) for w in manifest.warnings])
        self._warm_backends(manifest)
        if self.executor is None:
            self._new_executor()
        changes: dict[str, list[str]] = {"generated": [], "processed": [], "placed": []}

        from .progress import Reporter

        reporter = Reporter(quiet=self.s.quiet or self.s.as_json, stream=self.err)

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "asset":
                changes.setdefault(data["status"], []).append(data["id"])
            reporter.event(kind, data)

        options = Options(cache_dir=self.s.cache_dir, jobs=self.jobs, copy=self.s.copy, executor=self.executor)
        busy, self.busy = self.busy, False
        try:
            with reporter:
                result = run_build(manifest, options, on_event)
        except ProjectBusy as exc:
            if not busy:
                self._report_errors(shown, exc.problems, since, note=f"retrying every {BUSY_RETRY:g} s")
            self.busy = True
            self.retry_at = time.monotonic() + BUSY_RETRY
            with self.lock:
                self.pending.update(trigger)
            return
        except UsageError as exc:
            self._report_errors(shown, exc.problems, since)
            return
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        except Exception as exc:  # never let the watch die: report, start fresh workers next time
            self._report_errors(shown, [f"build crashed: {type(exc).__name__}: {exc}"], since)
            self._stop_executor()
            return
        summary = result.summary()
        written = sorted({i for ids in changes.values() for i in ids})
        line = {"ok": True, "trigger": shown, "changed": written, "generated_ids": sorted(result.generated_ids),
                "removed_ids": sorted(result.plan.removed), **summary,
                "warnings": [str(w) for w in manifest.warnings], "elapsed": round(time.monotonic() - since, 3)}
        if self.s.as_json:
            self._json(line)
        else:
            self._human(line)

    def _catch_up(self, manifest: Any) -> None:
        """After new folders were put under watch: a file created in one before its watch
        started was missed; if a glob now matches a file the load did not read, go again."""
        import glob

        read = {os.path.normpath(p) for p in manifest.sources}
        new = {os.path.realpath(m) for p in manifest.include_patterns
               for m in glob.glob(p, recursive=True) if os.path.isfile(m)} - read
        if new:
            self._add_pending(new)

    def _targets_on_error(self) -> Targets:
        files = _sources_despite_errors(self.path) | set(self.targets.files)
        return _targets(files, list(self.targets.patterns), list(self.targets.ignore))

    def _set_targets(self, targets: Targets) -> bool:
        """Use ``targets``; return whether a folder was newly put under watch."""
        self.targets = targets
        return self._apply_watches()

    def _apply_watches(self) -> bool:
        if self._handler is None:
            self._handler = event_handler(self.on_event)
        return reschedule(self.observer, self._handler, self.watches, self.targets,
                          lambda folder, exc: self._note(f"warning: cannot watch {folder}: {exc.strerror or exc}"))

    # -- the executor ------------------------------------------------------------------------
    def _new_executor(self) -> None:
        from .pipeline.executor import LocalExecutor

        self.executor = LocalExecutor(self.jobs, warm=sorted(self.backends))
        # Workers start on demand; ask for all of them now, so that they import and load while
        # nothing waits on them (the first rebuild after an edit must not pay for it).
        self.executor.start()

    def _warm_backends(self, manifest: Any) -> None:
        """Remember the parallel backends in use, so that new workers load them as they start."""
        from . import backends

        for name in {a.backend for a in manifest.assets}:
            try:
                if backends.get(name).parallel:
                    self.backends.add(name)
            except Exception:  # an unknown backend: the manifest check reports it
                pass

    def _stop_executor(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown(kill=True)  # idle workers, or an interrupted build's: nothing to wait for

    # -- output ------------------------------------------------------------------------------
    def _cache_root(self, manifest: Any) -> Path:
        from .pipeline.state import paths_of

        return paths_of(manifest, self.s.cache_dir).cache

    def _shown(self, path: str) -> str:
        root = str(self.path.resolve().parent)
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else path

    def _report_errors(self, shown: list[str], problems: list[Any], since: float, note: str = "") -> None:
        errors = [str(p) for p in problems]
        if self.s.as_json:
            self._json({"ok": False, "trigger": shown, "errors": errors,
                        "elapsed": round(time.monotonic() - since, 3)})
            return
        what = ", ".join(shown) + " changed: " if shown else ""
        tail = f"; {note}" if note else "; the last good output is unchanged; fix and save to rebuild"
        self._note(f"[{time.strftime('%H:%M:%S')}] {what}{len(errors)} "
                   f"{'problem' if len(errors) == 1 else 'problems'}{tail}")
        for e in errors:
            self._note(f"  error: {e}")

    def _warnings(self, warnings: list[str]) -> None:
        if warnings != self.warned and not self.s.as_json:
            for w in warnings:
                self._note(f"warning: {w}")
        self.warned = warnings

    def _human(self, line: dict[str, Any]) -> None:
        trigger = line["trigger"]
        head = f"[{time.strftime('%H:%M:%S')}] " + (", ".join(trigger) + " changed: " if trigger else "")
        parts = []
        if line["generated_ids"]:
            parts.append("generated " + _ids(line["generated_ids"]))
        redone = sorted(set(line["changed"]) - set(line["generated_ids"]))
        if redone:
            parts.append("updated " + _ids(redone))
        if line["removed_ids"]:
            parts.append("removed " + _ids(line["removed_ids"]))
        for f in line["failures"]:
            parts.append(f"FAILED {f['id']}: {f['error']}")
        what = "; ".join(parts) or "nothing to rebuild"
        ready = line["assets"] - line["failed"]
        where = f" in {line['output']} (profile {line['profile']})" if line.get("profile") else ""
        self._note(f"{head}{what} ({ready} of {line['assets']} assets ready{where}, {line['elapsed']:.2f} s)")

    def _say_watching(self) -> None:
        if not self.s.as_json:
            self._note(f"watching {self.s.manifest} and what it includes; Ctrl-C to stop")

    def _json(self, obj: dict[str, Any]) -> None:
        print(json.dumps(obj), file=self.out, flush=True)

    def _note(self, text: str) -> None:
        print(text, file=self.err, flush=True)


def _ids(ids: list[str], most: int = 8) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def watch(settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run a watch until Ctrl-C or SIGTERM; return the exit code (0).

    UsageError when the manifest does not exist at start. A signal during a rebuild stops it
    as Ctrl-C stops ``build``: finished work is in the cache, nothing half-written is left.
    """
    w = Watch(settings, out, err)
    previous_int = signal.getsignal(signal.SIGINT)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            w.start()
            w.run()
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            w.close()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous)
    if not settings.as_json:
        print("stopped watching", file=err, flush=True)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt

