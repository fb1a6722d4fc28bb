"""Exceptions the CLI turns into one clear line each (and exit code 2), never a traceback."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input: where it is and what is expected."""

    file: str
    where: str  # 'dialogue "intro_01"', '[voices.narrator]', 'dialogue #3', '' for the file
    message: str
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.where:
            parts.append(self.where)
        text = f"'{self.field}' {self.message}" if self.field else self.message
        return ": ".join(parts) + ": " + text


class UsageError(Exception):
    """Bad input from the user (manifest, options). Exit code 2."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("assetbuild", "", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ManifestError(UsageError):
    """The manifest is invalid; ``problems`` lists every problem found, not just the first."""


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
