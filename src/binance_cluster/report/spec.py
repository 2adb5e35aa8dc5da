"""What a figure module hands the writers: figure specs and the report they make up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """One figure: file stem, heading, what it shows (for a trader), size name and how to draw it."""

    name: str
    title: str
    caption: str
    size: str
    draw: Callable  # draw(matplotlib Figure) -> None


@dataclass(frozen=True, slots=True)
class Report:
    """A report: its title, facts about the run (label, value) and its figures, in order."""

    title: str
    facts: list[tuple[str, str]]
    figures: list[FigureSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """Choices a user can make: the sweep metric, the two heatmap parameters, rows of tables."""

    metric: str | None = None
    params: tuple[str, str] | None = None
    top: int = 20
