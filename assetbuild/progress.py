"""Build progress for people: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class Reporter:
    def __init__(self, quiet: bool, stream: TextIO, warnings: bool | None = None):
        # warnings: print warning lines even when quiet otherwise (`build --json` without -q).
        self.quiet, self.stream = quiet, stream
        self.warnings = not quiet if warnings is None else warnings
        self.tty = stream.isatty()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "plan":
            work = data["generate"] + data.get("fetch", 0) + data["process"] + data["place"]
            if work and not self.quiet and self.tty:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self.progress = Progress(TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), TextColumn("{task.description}"),
                                         transient=True, console=self._console())
                self.progress.start()
                self.task = self.progress.add_task("", total=work)
        elif kind == "asset":
            note = "" if data.get("target_met", True) else " (loudness target not met under the true-peak ceiling)"
            line = f"{data['status']:<9} {data['file']}" + (f" [{data['generator']}]" if data.get("generator") else "")
            self._advance(data["id"])
            if not self.quiet and (not self.tty or note or data.get("warnings")):
                self._print(line + note)
            for warning in data.get("warnings", []):
                self._print(f"warning   {data['id']}: {warning}")
        elif kind == "warning":
            if self.warnings:
                self._print(f"warning: {data['message']}", force=True)
        elif kind == "failed":
            self._advance(data["id"])
            self._print(f"failed    {data['id']}: {data['error']}", force=True)

    def summary(self, s: dict[str, Any]) -> None:
        built = s["assets"] - len([f for f in s["failures"] if not f.get("stage")])
        where = f" in {s['output']} (profile {s['profile']})" if s.get("profile") else ""
        parts = [f"{built} assets ready{where}: {s['generated']} generated, {s['reused']} reused from cache"]
        if s.get("fetched"):
            parts.append(f"{s['fetched']} fetched from the remote cache ({s['fetched_bytes'] / 1e6:.1f} MB)")
        if s.get("uploaded"):
            parts.append(f"{s['uploaded']} cache entries uploaded")
        if s["processed"] - s["generated"] > 0:
            parts.append(f"{s['processed'] - s['generated']} re-processed")
        if s.get("mixed"):
            parts.append(f"{s['mixed']} {'sequence' if s['mixed'] == 1 else 'sequences'} mixed")
        if s["removed"]:
            parts.append(f"{s['removed']} removed")
        if s["failed"]:
            parts.append(f"{s['failed']} failed")
        if s.get("billed_characters"):
            parts.append(f"{s['billed_characters']} characters billed")
        self._print("; ".join(parts) + f" ({s['seconds']:.1f} s)", force=True)

    def _advance(self, description: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=1, description=description)

    def _console(self) -> Console:
        from rich.console import Console

        return Console(file=self.stream)

    def _print(self, line: str, force: bool = False) -> None:
        if self.quiet and not force:
            return
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)
