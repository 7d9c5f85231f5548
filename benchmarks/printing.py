"""What every benchmark script prints with: progress on stderr, aligned tables on stdout."""

from __future__ import annotations

import sys


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout holds only the figures."""
    print(message, file=sys.stderr, flush=True)


def table(header: list[str], rows: list[list[str]]) -> None:
    """Columns aligned: the first to the left, the figures to the right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells))
