"""``serve --watch``: build the served manifest whenever its files change.

It follows the same files as ``assetbuild watch`` (the manifest, its includes and include
globs, the input files it names; see :func:`assetbuild.watch.targets_of`) and starts the build
through ``POST /build``'s runner, so every rebuild is announced on ``/events`` and the report
page updates live. Changes during a build are gathered and built right after it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..watch import Targets, event_handler, reschedule, targets_of
from .builds import BuildBusy, BuildRunner
from .project import ServedProject


class AutoBuild:
    def __init__(self, project: ServedProject, runner: BuildRunner, debounce: float = 0.2):
        self.project, self.runner, self.debounce = project, runner, debounce
        self.observer: Any = None
        self.watches: dict[tuple[str, bool], Any] = {}
        self.targets = Targets()
        self.wake = threading.Event()
        self.last_event = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="assetbuild-autobuild", daemon=True)

    def start(self) -> None:
        from watchdog.observers import Observer

        self.handler = event_handler(self._on_event)
        self.observer = Observer()
        self.observer.start()
        self._retarget()
        self.wake.set()  # one build at start, as `assetbuild watch` does
        self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        self.wake.set()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
        self.thread.join(timeout=5)

    def _on_event(self, event: Any) -> None:  # watchdog's thread
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type not in ("created", "deleted", "moved"):
            return
        paths = [event.src_path] + ([event.dest_path] if event.event_type == "moved" else [])
        if any(p and self.targets.relevant(os.fsdecode(p), event.is_directory) for p in paths):
            self.last_event = time.monotonic()
            self.wake.set()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            if not self.wake.wait(0.5):
                continue
            while time.monotonic() - self.last_event < self.debounce:  # let an editor's save settle
                time.sleep(self.debounce / 4)
            while self.runner.running and not self.stopped.is_set():  # after the build under way
                time.sleep(0.05)
            if self.stopped.is_set():
                return
            self.wake.clear()
            try:
                self.runner.start()
            except BuildBusy:  # a POST /build got in first: build again after it
                self.wake.set()
                continue
            self.runner.wait()
            self._retarget()  # an include may have been added, an input file named

    def _retarget(self) -> None:
        snap = self.project.current()
        self.targets = targets_of(snap.manifest, snap.cache_root)
        reschedule(self.observer, self.handler, self.watches, self.targets)  # a folder gone: next time
