"""Trade a job (the backtest's TOML plus its [live] table) on paper, the testnet or a real account.

  mpirun -n 2 binance-cluster live jobs/paper.toml --base-url http://127.0.0.1:8765
  mpirun -n 2 binance-cluster live jobs/live.toml --mode testnet
  BINANCE_CLUSTER_LIVE=yes mpirun -n 2 binance-cluster live jobs/live.toml --mode live --confirm-live

Once per closed candle: every rank fetches its symbols' new candles into the store and computes
their signals; rank 0 runs the backtest's decision step on the account's real fills and
balances, sends the orders, journals everything and prints one line per bar (bar time UTC,
latency from the candle's close to the last order sent, orders, equity). SIGTERM or the
kill-switch file stops it cleanly; `--max-bars K` stops after K bars; `--report` then renders
the live report beside the journal. Start-up reconciles the journal with the exchange first
and prints what it found in one line ("reconciled with the exchange: ..."), then how many
protective orders it placed or cancelled, if any. Bad input, missing or refused keys: one line, exit code 2.
"""

from __future__ import annotations

NAME = "live"
HELP = "trade a job on paper, the spot testnet or a real account (one decision per closed bar)"


def add_arguments(p) -> None:
    from binance_cluster.live.job import MODES

    p.add_argument("job", help="job file (TOML) with an optional [live] table")
    p.add_argument("--mode", choices=MODES, default="paper",
                   help="paper (default: local fills on the exchange's prices, no keys), testnet "
                        "(TEST_BINANCE_API_KEY/SEC) or live (real money: BINANCE_API_KEY/SEC)")
    p.add_argument("--base-url", default=None,
                   help="the exchange to use instead of Binance's (e.g. exchange-sim's URL)")
    p.add_argument("--confirm-live", action="store_true",
                   help="--mode live only: yes, trade real money (BINANCE_CLUSTER_LIVE=yes too)")
    p.add_argument("--max-bars", type=int, default=None, help="stop after this many bars")
    p.add_argument("--report", action="store_true",
                   help="render the live report beside the journal when the run ends (rank 0)")


def run(args) -> int:
    from binance_cluster.backtest.driver import _load_kernels
    from binance_cluster.errors import ConfigError
    from binance_cluster.live.job import load_live_job
    from binance_cluster.live.loop import LiveLoop, SymbolWorker, stop_workers, worker_loop
    from binance_cluster.live.venue import Venue
    from binance_cluster.parallel import get_comm, on_root

    comm = get_comm()
    if comm.rank != 0:
        forget_keys()
    rank0: dict = {}

    def check():
        if args.max_bars is not None and args.max_bars < 1:
            raise ConfigError(f"--max-bars {args.max_bars}: must be at least 1")
        if args.confirm_live and args.mode != "live":
            raise ConfigError("--confirm-live: only with --mode live")
        venue = Venue(args.mode, args.base_url, args.confirm_live)
        live_job = load_live_job(args.job, args.mode)
        _open(live_job, venue, comm.rank, rank0)
        return live_job, venue

    live_job, venue = on_root(comm, check)
    _load_kernels(live_job.job, comm)
    worker = SymbolWorker(live_job, venue.public_url)
    if comm.rank != 0:
        return worker_loop(comm, worker)
    loop = LiveLoop(live_job, rank0["broker"], rank0["market"], rank0["journal"], comm, worker,
                    rank0["kill"], mode=args.mode)
    print(rank0["reconciled"].summary(), flush=True)
    now = loop.exchange_now()
    restored = loop.exits.start(now - now % loop.bar_ms)   # open positions get their protection back
    if restored:
        print(f"start-up: {restored} protective order(s) placed or cancelled", flush=True)
    code = loop.run(args.max_bars)
    stop_workers(comm, code)
    worker.close()
    rank0["journal"].close()
    if args.report:
        from binance_cluster.commands.report import render

        render(live_job.live.journal, args, kind="live")
    return code


def _open(live_job, venue, rank: int, into: dict) -> None:
    """Rank 0: the broker (and its keys), the market feed, the journal reconciled, the kill switch."""
    from pathlib import Path

    from binance_cluster.exchange.broker.feeds import ExchangeFeed
    from binance_cluster.live.journal import Journal
    from binance_cluster.live.reconcile import reconcile
    from binance_cluster.live.risk import KillSwitch
    from binance_cluster.live.venue import open_broker

    broker = open_broker(live_job, venue, rank)
    market = getattr(broker, "feed", None) or ExchangeFeed(venue.public_url, live_job.job.interval,
                                                          live_job.live.timeout_seconds)
    journal = Journal(live_job.live.journal, job=live_job.name)
    for s in live_job.job.symbols:
        f = broker.filters(s)
        journal.record_symbol(s, f.base_asset, f.quote_asset)
    reconciled = reconcile(journal, broker, list(live_job.job.symbols))
    Path(live_job.live.heartbeat).parent.mkdir(parents=True, exist_ok=True)
    kill = KillSwitch(live_job.live.limits.kill_switch)
    kill.install()
    into.update(broker=broker, market=market, journal=journal, kill=kill, reconciled=reconciled)


def forget_keys() -> None:
    """A worker rank drops the API key variables it inherited (jobs/live.sh never gives them)."""
    import os

    from binance_cluster.exchange.broker.keys import LIVE_VARS, TEST_VARS

    for name in LIVE_VARS + TEST_VARS:
        os.environ.pop(name, None)
