"""Plain-text tables for command output."""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> str:
    """`rows` (the first one is the header) as aligned columns with a rule under the header.

    Columns whose index is in `right` are right-aligned (numbers), the others left-aligned.
    """
    right = set(right)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
