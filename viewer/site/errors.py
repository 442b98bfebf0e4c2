"""Errors a user can act on: what is wrong, where, and what was expected."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a site: in which file, at which field, and why."""

    file: str
    where: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.severity}: {self.file}:{where} {self.message}"


class SiteError(Exception):
    """A site cannot be opened. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | str, file: str = ""):
        if isinstance(problems, str):
            problems = [Problem(file, "", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ModelError(SiteError):
    """The model file is missing, unsafe, too large or unreadable."""
