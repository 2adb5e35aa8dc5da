"""A command that fails on rank 1 only while rank 0 waits in a collective: must abort, not hang."""

import sys
import types

from binance_cluster import cli
from binance_cluster.errors import DataError
from binance_cluster.parallel import get_comm, on_root


def run(args) -> int:
    comm = get_comm()
    if sys.argv[1] == "worker-fails":
        if comm.rank == 1:
            raise DataError("rank one found a bad file")
        comm.barrier()
    else:  # "root-validates": the error is raised on every rank through on_root
        on_root(comm, lambda: (_ for _ in ()).throw(DataError("job.toml: key 'x' is unknown")))
    return 0


module = types.SimpleNamespace(NAME="boom", HELP="fail", __doc__="fail", run=run,
                               add_arguments=lambda p: None)
cli.command_modules = lambda: [module]
sys.exit(cli.main(["boom"]))
