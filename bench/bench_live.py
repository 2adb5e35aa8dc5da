"""Decision latency of the live loop: from a candle's close to the last order sent, per bar.

`mpirun -n N binance-cluster live` (testnet mode, the real python-binance client over HTTP)
against the local emulator replaying the real 1m candles of ../shared/data, its replay clock
stepped bar by bar (as tests/live/test_live_parity.py does); the figures come from the
journal's bar records (the loop's own clock: the close is when the loop first saw the clock at
it, so the poll interval is not counted twice). Printed side by side: -n 1 and -n 2, median,
90th percentile and worst, over the bars after the first (which fetches the history).

  python bench/bench_live.py [--bars 60] [--symbols 16] [--interval 1m] [--ranks 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.live import (DAY0, build_source, exchange_rules, live_job_text,  # noqa: E402
                          run_stepped, stepped_emulator)
from support.real_data import SHARED_DATA, real_symbols  # noqa: E402

from binance_cluster.exchange.emulator import EmulatorControl  # noqa: E402
from binance_cluster.live.journal import Journal  # noqa: E402
from binance_cluster.types import interval_ms  # noqa: E402

STRATEGY = ("[strategy.params]\nwindow = 3\nmin_growth = 0.1\nmin_weight = 2\nroom = 0.0\nband = 0.2\n"
            "[risk]\nstop_loss = false\ntake_profit = false\nmax_hold_bars = 4\n")


def one_run(root: Path, source, symbols, interval: str, bars: int, ranks: int) -> list[int]:
    bar_ms = interval_ms(interval)
    first = DAY0 + 3 * 86_400_000
    out = root / f"out-{ranks}"
    with stepped_emulator(source, root, first, bar_ms, 10_000.0, 0.001, 0.0002) as url:
        job = root / f"bench-{ranks}.toml"
        job.write_text(live_job_text("momentum_burst", STRATEGY, symbols, interval,
                                     root / f"store-{ranks}", out, first, first + bars * bar_ms,
                                     exchange_rules(url, symbols), 10_000.0, 0.001, 0.0002))
        run = run_stepped(job, url, EmulatorControl(url), first, bars, bar_ms,
                          out / "heartbeat.json", ranks=ranks)
    if run.code != 0:
        raise SystemExit(f"-n {ranks}: the live job failed:\n{run.stderr[-2000:]}")
    with Journal(out / "journal.sqlite", readonly=True) as journal:
        records = journal.bars()
    return [b.latency_ms for b in records[1:]], sum(b.orders for b in records)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bars", type=int, default=60)
    p.add_argument("--symbols", type=int, default=16)
    p.add_argument("--interval", default="1m")
    p.add_argument("--ranks", default="1,2")
    args = p.parse_args()
    symbols = [s for s in real_symbols(str(SHARED_DATA)) if s != "ADAUSDT"][:args.symbols]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = build_source(SHARED_DATA, root / "source", symbols, 5)
        print(f"live loop, {len(symbols)} symbols, {args.interval} bars, {args.bars} bars each "
              "(latency from the candle's close to the last order sent, ms)")
        print(f"{'ranks':>5}  {'median':>7}  {'p90':>7}  {'worst':>7}  {'orders':>6}")
        for ranks in (int(r) for r in args.ranks.split(",")):
            lat, orders = one_run(root, source, symbols, args.interval, args.bars, ranks)
            q = statistics.quantiles(lat, n=10)
            print(f"{ranks:>5}  {statistics.median(lat):>7.0f}  {q[-1]:>7.0f}  {max(lat):>7.0f}  "
                  f"{orders:>6}")


if __name__ == "__main__":
    main()
