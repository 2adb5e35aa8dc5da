"""Run map_units over units of which some fail; rank 0 prints the outcome as JSON."""

import json
import logging
import sys

from binance_cluster.log import setup_logging
from binance_cluster.parallel import get_comm, map_units, on_root, quiet_barrier, quiet_bcast


def work(unit: int) -> int:
    if unit % 7 == 3:
        raise ValueError(f"unit {unit} is bad")
    return sum(k * k for k in range(unit * 1000))


comm = get_comm()
setup_logging(comm.rank, comm.size)
units = list(range(int(sys.argv[1])))
seen = []
results = map_units(comm, units, work, costs=[u + 1 for u in units],
                    names=[f"u{u}" for u in units], progress=lambda r: seen.append(r.index))
streamed = []
bare = map_units(comm, units, work, costs=[u + 1 for u in units], names=[f"u{u}" for u in units],
                 on_result=lambda r: streamed.append([r.index, r.name, r.value, r.error]))
quiet_barrier(comm)
config = on_root(comm, lambda: {"answer": 42})
news = [quiet_bcast(comm, {"bar": k} if comm.rank == 0 else None) for k in range(3)]
ranks = comm.gather(comm.rank)
news = comm.gather(news)
if comm.rank == 0:
    print(json.dumps({
        "size": comm.size, "config": config, "ranks": ranks, "news": news,
        "progress": sorted(seen),
        "results": [[r.index, r.name, r.value, r.error] for r in results],
        "worked_on": sorted({r.rank for r in results}),
        "streamed": sorted(streamed, key=lambda r: r[0]),
        "bare": [[r.index, r.value, r.error] for r in bare],
    }))
