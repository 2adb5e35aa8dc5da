"""Rank-aware logging set-up; library modules only call logging.getLogger(__name__)."""

from __future__ import annotations

import logging
import sys


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, size: int):
        super().__init__()
        self.tag = f"[rank {rank}/{size}] " if size > 1 else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank_tag = self.tag
        return True


def setup_logging(rank: int = 0, size: int = 1, verbose: int = 0, debug: bool = False) -> None:
    """Log to stderr with the rank in every line; workers are quieter than rank 0."""
    if debug:
        level = logging.DEBUG
    elif verbose:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    else:
        level = logging.INFO if rank == 0 else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RankFilter(rank, size))
    fmt = "%(asctime)s %(rank_tag)s%(levelname)s %(name)s: %(message)s" if (verbose or debug) \
        else "%(rank_tag)s%(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger("binance_cluster")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("numba", "urllib3", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
