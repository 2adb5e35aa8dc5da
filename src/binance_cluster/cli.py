"""The `binance-cluster` command line: one sub-command per module in `binance_cluster.commands`.

Exit codes: 0 success; 1 runtime error (exchange, I/O, a failed unit, a bug);
2 bad input or usage (file, job, argument, symbol); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from binance_cluster import __version__, commands
from binance_cluster.errors import BinanceClusterError
from binance_cluster.log import setup_logging
from binance_cluster.parallel import SharedError, get_comm

log = logging.getLogger("binance_cluster.cli")

EPILOG = "exit codes: 0 ok, 1 runtime error, 2 bad input or usage, 130 interrupted"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output (repeat for more)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    return common


def command_modules() -> list:
    """Every sub-command module, in name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{commands.__name__}.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="binance-cluster", parents=[common], epilog=EPILOG,
        description="Trade Binance spot markets and backtest the same logic, in parallel under mpirun.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in command_modules():
        p = sub.add_parser(module.NAME, parents=[common], help=module.HELP,
                           description=module.__doc__, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    debug = getattr(args, "debug", False)
    args.verbose, args.debug = verbose, debug
    comm = get_comm()
    setup_logging(comm.rank, comm.size, verbose, debug)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("binance-cluster: interrupted", file=sys.stderr)
        return 130
    except BinanceClusterError as exc:
        shared = isinstance(exc, SharedError) or getattr(exc, "shared", False)
        if debug:
            log.exception("error")
        if comm.rank == 0 or not shared:
            _report(comm, str(exc))
        if comm.size > 1 and not shared:
            comm.abort(exc.exit_code)
        return exc.exit_code
    except Exception as exc:
        if debug:
            log.exception("unexpected error")
        _report(comm, f"{type(exc).__name__}: {exc}" + ("" if debug else " (use --debug for the traceback)"))
        if comm.size > 1:
            comm.abort(1)
        return 1


def _report(comm, message: str) -> None:
    where = f" [rank {comm.rank}]" if comm.size > 1 else ""
    first, *rest = (message or "error").splitlines() or ["error"]
    print(f"binance-cluster{where}: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)
    sys.stderr.flush()
