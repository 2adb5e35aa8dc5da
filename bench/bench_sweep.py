"""Benchmark the fused sweeps of every strategy against vectorbt's Portfolio.from_signals.

    .venv/bin/python bench/bench_sweep.py [DATA_DIR] [--repeat N] [--no-synthetic]
                                          [--strategies sma_cross,ema_cross,...]

`sma_cross` (the headline): fast 5..50 step 5 x slow 20..200 step 20 (100 combinations), fee
0.1 %, all in, long only, a signal on the close of bar t filled at the open of bar t+1, run on
the 16 real symbols (1m candles) and on a synthetic year of 1m candles. Both sides run warm in
this process (numba compiled, caches loaded) and are timed best of N:

- ours: `sweep_symbol` (signals, decision step and the ten metrics of every combination), in
  the `quote` fee model;
- vectorbt 1.2 (a benchmark-only peer): `vbt.MA.run` for both windows, `crossed_above` /
  `crossed_below`, signals shifted by one bar, `Portfolio.from_signals(close, entries, exits,
  price=open, fees=0.001, size=inf, init_cash=10000)`; timed without metrics ("signals +
  simulation") and with the peer metrics matching ours (total and annualised return, Sharpe,
  Sortino, max drawdown, trade count, win rate, profit factor, fees).

Our side runs the `quote` fee model (every fee in quote on top of the notional, the whole
quantity sold), which is vectorbt's; the default `exchange` model (Binance's accounting: the
buy's commission in the base asset, 8-decimal amounts, lot-floored exits, dust) is timed on
the same sweep beside it, without filters and with the data's tick, a 0.00001 lot and a
minimum notional of 5, to show its cost.

Figures: ns per candle-combination and candle-combinations per second for each, the ratios,
and the trades that agree (entry and exit bar of every trade of every combination):
  1. vectorbt's simulation fed with our signals must reproduce our trades exactly (the fill
     and sizing rules are the same); the total returns of combinations that end flat are
     compared too;
  2. vectorbt's own float moving averages: the trades that differ, and the signal bars that
     differ with how many of them sit at an exact tie of the two SMAs (our integer comparison
     sees the tie, float sums see a random side).

The other strategies (grids in OTHERS, about 100 combinations each) are timed the same way
against vectorbt's simulation alone (`from_signals` handed our signals, the peer's "bare
simulation") and against its own indicator (`vbt.MA` with ewm, `vbt.RSI` with ewm,
`vbt.BBANDS`) + the rule + `from_signals`; `momentum_burst` runs with its stop loss 5 % and
take profit 7 % (vectorbt: sl_stop / tp_stop from the fill price, high and low given) and has
no peer indicator. `ml_barrier` is not timed: its sweep only moves a threshold over one
probability series, and vectorbt has no walk-forward model to compare with.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from binance_cluster.engine.simulate import (Risk, SymbolRules, rules_for_prices, run_symbol,
                                             sweep_symbol)
from binance_cluster.strategies.registry import compute_signals, get_strategy
from binance_cluster.types import Candles

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm-1m"
FAST = list(range(5, 55, 5))
SLOW = list(range(20, 220, 20))
GRID = [{"fast": f, "slow": s} for f in FAST for s in SLOW]
RISK = Risk(initial_cash=10_000.0, stake=1.0, fee_rate=0.001, fee_model="quote")
EXCHANGE = Risk(initial_cash=10_000.0, stake=1.0, fee_rate=0.001, fee_model="exchange")
RULES = SymbolRules(tick_size=0.0, step_size=0.0, min_notional=0.0)   # vectorbt has no filters
RUINED = 1.0


def load_csv(path: Path) -> Candles:
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        table = np.loadtxt(fh, delimiter=",", ndmin=2)
    cols = {name: table[:, i] for i, name in enumerate(header)}
    cols["open_time"] = cols["open_time"].astype(np.int64)
    return Candles.from_columns(cols)


def synthetic_year(seed: int = 11, n: int = 525_600) -> Candles:
    """A year of 1m candles: a random walk with volatility clusters, prices on a 0.01 tick."""
    rng = np.random.default_rng(seed)
    vol = 0.0008 * np.exp(np.convolve(rng.normal(0, 0.35, n), np.ones(240) / 240 ** 0.5,
                                      mode="same"))
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0, 1, n) * vol))
    close = np.round(close, 2)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 1, (2, n))) * vol * close
    high = np.round(np.maximum(open_, close) + wick[0], 2)
    low = np.round(np.minimum(open_, close) - wick[1], 2)
    t = 1_704_067_200_000 + 60_000 * np.arange(n, dtype=np.int64)
    return Candles.from_columns(dict(open_time=t, open=open_, high=high, low=low, close=close,
                                     volume=np.ones(n)))


def best_of(repeat: int, fn):
    """(best wall seconds, best process CPU seconds, last result) of `repeat` calls."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, result


# -- ours -------------------------------------------------------------------------------------

def our_trades(c: Candles, name: str = "sma_cross", grid: list | None = None,
               risk: Risk = RISK) -> tuple[list[list[tuple[int, int]]], np.ndarray, np.ndarray, list]:
    """Per combination: our trades (entry bar, exit bar, closed at the end), entry (without an
    exit on the same bar) and exit signals, and whether it ends flat and never ruined."""
    st = get_strategy(name)
    grid = GRID if grid is None else grid
    trades, entries, exits, flat = [], [], [], []
    for p in grid:
        sig = compute_signals(st, c, p, "1m")
        sim = run_symbol(c, sig, risk, RULES)
        reasons = sim.trades["exit_reason"]
        # a combination whose equity fell under RUINED quote currency is compared up to there:
        # vectorbt rejects orders below its minimum size (~1e-8 units) where we still trade
        poor = np.flatnonzero(sim.trades["quantity"] * sim.trades["entry_price"] < RUINED)
        cut = int(poor[0]) if poor.size else sim.n_trades
        trades.append(list(zip(sim.trades["entry_bar"][:cut].tolist(),
                               sim.trades["exit_bar"][:cut].tolist(),
                               (reasons[:cut] == 5).tolist())))
        if cut < sim.n_trades:
            trades[-1].append((-1, int(sim.trades["entry_bar"][cut]), False))   # the cut-off
        entries.append(sig.entry & ~sig.exit)
        exits.append(sig.exit)
        flat.append(not (reasons == 5).any() and cut == sim.n_trades)
    return trades, np.column_stack(entries), np.column_stack(exits), flat


# -- vectorbt ---------------------------------------------------------------------------------

def vbt_signals(vbt, pd, c: Candles) -> tuple[np.ndarray, np.ndarray]:
    """vectorbt's own entries and exits [bar, combination]: float SMAs, crossed_above/below."""
    close = pd.Series(c.close)
    fast = vbt.MA.run(close, window=FAST).ma.to_numpy()
    slow = vbt.MA.run(close, window=SLOW).ma.to_numpy()
    f = pd.DataFrame(np.repeat(fast, len(SLOW), axis=1))
    s = pd.DataFrame(np.tile(slow, (1, len(FAST))))
    return f.vbt.crossed_above(s).to_numpy(), f.vbt.crossed_below(s).to_numpy()


def vbt_portfolio(vbt, pd, c: Candles, entries=None, exits=None, risk: Risk = RISK):
    close = pd.Series(c.close)
    if entries is None:
        entries, exits = vbt_signals(vbt, pd, c)
    shifted_e = np.zeros_like(entries)
    shifted_x = np.zeros_like(exits)
    shifted_e[1:] = entries[:-1]
    shifted_x[1:] = exits[:-1]
    stops = {}
    if risk.stop_loss is not None or risk.take_profit is not None:
        stops = dict(open=pd.Series(c.open), high=pd.Series(c.high), low=pd.Series(c.low),
                     sl_stop=risk.stop_loss if risk.stop_loss is not None else np.nan,
                     tp_stop=risk.take_profit if risk.take_profit is not None else np.nan,
                     stop_entry_price="fillprice")
    return vbt.Portfolio.from_signals(close, shifted_e, shifted_x, price=pd.Series(c.open),
                                      fees=risk.fee_rate, size=np.inf,
                                      init_cash=risk.initial_cash, freq="1min", **stops)


def vbt_metrics(pf) -> dict:
    trades = pf.trades
    return dict(total_return=pf.total_return().to_numpy(),
                cagr=pf.annualized_return().to_numpy(), sharpe=pf.sharpe_ratio().to_numpy(),
                sortino=pf.sortino_ratio().to_numpy(), max_drawdown=pf.max_drawdown().to_numpy(),
                trades=trades.count().to_numpy(), win_rate=trades.win_rate().to_numpy(),
                profit_factor=trades.profit_factor().to_numpy(),
                fees=pf.orders.fees.sum().to_numpy())


def vbt_trades(pf, n_cols: int = len(GRID)) -> list[list[tuple[int, int, bool]]]:
    rec = pf.trades.records
    out: list[list[tuple[int, int, bool]]] = [[] for _ in range(n_cols)]
    for col, e, x, status in zip(rec["col"], rec["entry_idx"], rec["exit_idx"], rec["status"]):
        out[int(col)].append((int(e), int(x), int(status) == 0))   # status 0: open
    return out


def signals_at_ties(vbt, pd, c: Candles, entries: np.ndarray, exits: np.ndarray
                    ) -> tuple[int, int]:
    """(bars where vectorbt's own signals differ from ours, those at an exact SMA tie)."""
    from binance_cluster.kernels.simulate import sum_relations
    from binance_cluster.strategies.registry import SignalContext

    ve, vx = vbt_signals(vbt, pd, c)
    prefix = SignalContext(c, "1m").prefix()
    rel = np.zeros(len(c), np.int8)
    differ = tied = 0
    for k, p in enumerate(GRID):
        bars = np.flatnonzero((ve[:, k] != entries[:, k]) | (vx[:, k] != exits[:, k]))
        if bars.size:
            rel[:] = 1
            sum_relations(prefix, p["fast"], p["slow"], max(p["fast"], p["slow"]) - 1, len(c),
                          True, rel)
            differ += bars.size
            tied += int(np.count_nonzero((rel[bars] == 0) | (rel[bars - 1] == 0)))
    return differ, tied


def compare(ours_t: list, theirs: list, n: int) -> tuple[int, int, int]:
    """(trades that agree, trades compared, vectorbt trades left out after a ruin).

    Our trades still open at the end are closed at the last bar (reason end); vectorbt keeps
    them open with exit index n-1: both count as the same trade.
    """
    agree = total = left_out = 0
    for a, b in zip(ours_t, theirs):
        if a and a[-1][0] == -1:                   # ruined from this entry bar on
            cut = a[-1][1]
            a = a[:-1]
            left_out += sum(1 for e, _, _ in b if e >= cut)
            b = [x for x in b if x[0] < cut]
        total += max(len(a), len(b))
        sa = {(e, x if not end else n - 1) for e, x, end in a}
        sb = {(e, x) for e, x, _ in b}
        agree += len(sa & sb)
    return agree, total, left_out


# -- main -------------------------------------------------------------------------------------

def report(label: str, series: list[Candles], repeat: int, vbt, pd) -> None:
    """Time both sides symbol by symbol (one vectorbt portfolio alive at a time), then compare."""
    n_candles = sum(len(c) for c in series)
    cc = n_candles * len(GRID)
    print(f"\n== {label}: {len(series)} series, {n_candles:,} candles x {len(GRID)} combinations "
          f"= {cc:,} candle-combinations", flush=True)
    st = get_strategy("sma_cross")
    totals = dict(ours=[0.0, 0.0], sim=[0.0, 0.0], all=[0.0, 0.0], exchange=[0.0, 0.0],
                  exchange_rules=[0.0, 0.0])
    agree_own = total_own = agree_vbt = total_vbt = left_out = differ = at_ties = 0
    worst = 0.0
    for c in series:
        sweep_symbol(st, c, GRID, RISK, RULES, "1m")          # warm: compile / load the cache
        w, cpu, results = best_of(repeat, lambda: sweep_symbol(st, c, GRID, RISK, RULES, "1m"))
        totals["ours"][0] += w
        totals["ours"][1] += cpu
        for key, rules in (("exchange", RULES), ("exchange_rules", rules_for_prices(c.close))):
            sweep_symbol(st, c, GRID, EXCHANGE, rules, "1m")
            w, cpu, _ = best_of(repeat, lambda: sweep_symbol(st, c, GRID, EXCHANGE, rules, "1m"))
            totals[key][0] += w
            totals[key][1] += cpu
        vbt_metrics(vbt_portfolio(vbt, pd, c))              # warm
        w, cpu, pf = best_of(repeat, lambda: vbt_portfolio(vbt, pd, c))
        totals["sim"][0] += w
        totals["sim"][1] += cpu
        w, cpu, _ = best_of(repeat, lambda: vbt_metrics(vbt_portfolio(vbt, pd, c)))
        totals["all"][0] += w
        totals["all"][1] += cpu
        mine, ent, ext, flat = our_trades(c)
        a, t, _ = compare(mine, vbt_trades(pf), len(c))
        agree_vbt, total_vbt = agree_vbt + a, total_vbt + t
        d, tied = signals_at_ties(vbt, pd, c, ent, ext)
        differ, at_ties = differ + d, at_ties + tied
        del pf
        fed = vbt_portfolio(vbt, pd, c, ent, ext)
        a, t, out = compare(mine, vbt_trades(fed), len(c))
        agree_own, total_own, left_out = agree_own + a, total_own + t, left_out + out
        tr = fed.total_return().to_numpy()
        for k, m in enumerate(results):
            if flat[k]:
                worst = max(worst, abs(m["total_return"] - tr[k]))
        del fed
        gc.collect()

    def line(name, wall, cpu):
        print(f"  {name:<44} {wall * 1e9 / cc:9.2f} ns/cc  {cc / wall / 1e6:10.1f} M cc/s"
              f"  (cpu {cpu * 1e9 / cc:8.2f} ns/cc)")

    (w_ours, c_ours), (w_sim, c_sim), (w_all, c_all) = totals["ours"], totals["sim"], totals["all"]
    line("ours: sweep_symbol (signals+step+metrics)", w_ours, c_ours)
    (w_ex, c_ex), (w_exr, c_exr) = totals["exchange"], totals["exchange_rules"]
    line("ours, exchange fee model, no filters", w_ex, c_ex)
    line("ours, exchange fee model, tick/lot/notional", w_exr, c_exr)
    print(f"  exchange model cost: {w_ex / w_ours:5.2f}x the quote model's wall time without "
          f"filters, {w_exr / w_ours:5.2f}x with the data's tick, lot 0.00001, notional 5")
    line("vectorbt: MA + crossed + from_signals", w_sim, c_sim)
    line("vectorbt: the same + metrics", w_all, c_all)
    print(f"  ratio, wall: {w_all / w_ours:6.1f}x vs vectorbt with metrics, "
          f"{w_sim / w_ours:6.1f}x vs vectorbt signals + simulation only")
    print(f"  ratio, cpu:  {c_all / c_ours:6.1f}x vs vectorbt with metrics, "
          f"{c_sim / c_ours:6.1f}x vs vectorbt signals + simulation only")
    print(f"  trades, vectorbt simulating our signals: {agree_own:,} of {total_own:,} agree"
          f"{' (all)' if agree_own == total_own else ''}; "
          f"max |total return difference| (combinations ending flat, not ruined): {worst:.1e}")
    if left_out:
        print(f"  ({left_out:,} vectorbt trades left out: after fees had cut a combination's "
              f"equity under {RUINED:g} USDT, where vectorbt rejects orders under its minimum "
              "size)")
    print(f"  trades, vectorbt with its own float SMAs: {agree_vbt:,} of {total_vbt:,} agree; "
          f"the signals differ on {differ:,} bars, {at_ties:,} of them at an exact tie of the "
          f"two SMAs on that bar or the one before (float sums pick a side)", flush=True)


# -- the other strategies ---------------------------------------------------------------------

RSI_N = list(range(5, 55, 5))
RSI_LOWER = [20.0, 25.0, 30.0, 35.0, 40.0]
RSI_UPPER = [60.0, 70.0]
BB_N = list(range(10, 110, 10))
BB_K = [0.5 * i for i in range(1, 11)]
BURST_WINDOW = [3, 4, 5, 6, 7]
BURST_WEIGHT = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
BURST_HOURS = [12, 24]
OTHERS = {
    "ema_cross": (GRID, RISK),
    "rsi_reversion": ([{"n": n, "lower": lo, "upper": up} for n in RSI_N for lo in RSI_LOWER
                       for up in RSI_UPPER], RISK),
    "bollinger_reversion": ([{"n": n, "k": k} for n in BB_N for k in BB_K], RISK),
    "momentum_burst": ([{"window": w, "min_weight": mw, "min_growth": 0.05, "hours": h}
                        for w in BURST_WINDOW for mw in BURST_WEIGHT for h in BURST_HOURS
                        if mw <= w * (w + 1)],
                       Risk(initial_cash=10_000.0, stake=1.0, fee_rate=0.001, fee_model="quote",
                            stop_loss=0.05, take_profit=0.07)),
}


def vbt_own_signals(vbt, pd, name: str, c: Candles) -> tuple[np.ndarray, np.ndarray] | None:
    """vectorbt's own indicators and the strategy's rule [bar, combination]; None: no peer
    indicator (momentum_burst: vectorbt simulates our signals)."""
    close = pd.Series(c.close)
    if name == "ema_cross":
        fast = vbt.MA.run(close, window=FAST, ewm=True).ma.to_numpy()
        slow = vbt.MA.run(close, window=SLOW, ewm=True).ma.to_numpy()
        f = pd.DataFrame(np.repeat(fast, len(SLOW), axis=1))
        s = pd.DataFrame(np.tile(slow, (1, len(FAST))))
        return f.vbt.crossed_above(s).to_numpy(), f.vbt.crossed_below(s).to_numpy()
    if name == "rsi_reversion":
        rsi = vbt.RSI.run(close, window=RSI_N, ewm=True).rsi.to_numpy()
        per = len(RSI_LOWER) * len(RSI_UPPER)
        values = np.repeat(rsi, per, axis=1)
        lower = np.tile(np.repeat(RSI_LOWER, len(RSI_UPPER)), len(RSI_N))
        upper = np.tile(RSI_UPPER, len(RSI_N) * len(RSI_LOWER))
        return values < lower, values > upper
    if name == "bollinger_reversion":
        bb = vbt.BBANDS.run(close, window=np.repeat(BB_N, len(BB_K)),
                            alpha=np.tile(BB_K, len(BB_N)), param_product=False)
        c2 = c.close[:, None]
        return c2 < bb.lower.to_numpy(), c2 > bb.middle.to_numpy()
    return None


def report_strategy(name: str, label: str, series: list[Candles], repeat: int, vbt, pd) -> None:
    """Our fused sweep of `name` against vectorbt's indicator + rule + from_signals."""
    grid, risk = OTHERS[name]
    n_candles = sum(len(c) for c in series)
    cc = n_candles * len(grid)
    print(f"\n== {name}, {label}: {len(series)} series, {n_candles:,} candles x {len(grid)} "
          f"combinations = {cc:,} candle-combinations"
          f"{' (stop loss 5 %, take profit 7 %)' if risk.stop_loss else ''}", flush=True)
    st = get_strategy(name)
    ours = [0.0, 0.0]
    sim = [0.0, 0.0]
    own = [0.0, 0.0]
    agree = total = left_out = agree_own = total_own = same_bar = 0
    worst = 0.0
    for c in series:
        sweep_symbol(st, c, grid, risk, RULES, "1m")
        w, cpu, results = best_of(repeat, lambda: sweep_symbol(st, c, grid, risk, RULES, "1m"))
        ours[0] += w
        ours[1] += cpu
        mine, ent, ext, flat = our_trades(c, name, grid, risk)
        vbt_portfolio(vbt, pd, c, ent, ext, risk)
        w, cpu, fed = best_of(repeat, lambda: vbt_portfolio(vbt, pd, c, ent, ext, risk))
        sim[0] += w
        sim[1] += cpu
        a, t, out = compare(mine, vbt_trades(fed, len(grid)), len(c))
        agree, total, left_out = agree + a, total + t, left_out + out
        if risk.stop_loss is not None:
            same_bar += sum(1 for trades in mine for e, x, _ in trades if e == x)
        tr = fed.total_return().to_numpy()
        for k, m in enumerate(results):
            if flat[k]:
                worst = max(worst, abs(m["total_return"] - tr[k]))
        del fed
        if vbt_own_signals(vbt, pd, name, c) is not None:
            def full():
                e, x = vbt_own_signals(vbt, pd, name, c)
                return vbt_portfolio(vbt, pd, c, e & ~x, x, risk)
            w, cpu, pf = best_of(repeat, full)
            own[0] += w
            own[1] += cpu
            a, t, _ = compare(mine, vbt_trades(pf, len(grid)), len(c))
            agree_own, total_own = agree_own + a, total_own + t
            del pf
        gc.collect()

    def line(title, wall, cpu):
        print(f"  {title:<44} {wall * 1e9 / cc:9.2f} ns/cc  {cc / wall / 1e6:10.1f} M cc/s"
              f"  (cpu {cpu * 1e9 / cc:8.2f} ns/cc)")

    line("ours: sweep_symbol (signals+step+metrics)", *ours)
    line("vectorbt: from_signals on our signals", *sim)
    if own[0]:
        line("vectorbt: own indicator + rule + from_signals", *own)
        print(f"  ratio, cpu: {own[1] / ours[1]:6.1f}x vs vectorbt indicator + simulation, "
              f"{sim[1] / ours[1]:6.1f}x vs vectorbt's simulation alone")
    else:
        print(f"  ratio, cpu: {sim[1] / ours[1]:6.1f}x vs vectorbt's simulation alone (no peer "
              "indicator: vectorbt is handed our signals, its indicator time counts as zero)")
    print(f"  trades, vectorbt simulating our signals: {agree:,} of {total:,} agree"
          f"{' (all)' if agree == total else ''}; max |total return difference| "
          f"(combinations ending flat, not ruined): {worst:.1e}")
    if left_out:
        print(f"  ({left_out:,} vectorbt trades left out after a ruin, see above)")
    if same_bar:
        print(f"  ({same_bar:,} of our trades hit their stop or target in the bar they entered: "
              "vectorbt checks stops from the bar after the entry, so it holds those on, and the "
              "trades after them shift)")
    if own[0]:
        print(f"  trades, vectorbt with its own indicator: {agree_own:,} of {total_own:,} agree "
              "(its definitions differ from TA-Lib's: EWM without the SMA seed, float sums)",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--strategies", default="sma_cross," + ",".join(OTHERS),
                    help="comma-separated strategies to time (default: all but ml_barrier)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import pandas as pd
    import vectorbt as vbt

    files = sorted(Path(args.data).glob("*-1m.csv.gz"))
    if not files:
        print(f"no *-1m.csv.gz files in {args.data}", file=sys.stderr)
        return 2
    real = [load_csv(f) for f in files]
    print(f"vectorbt {vbt.__version__}, grid {len(GRID)} combinations "
          f"(fast {FAST[0]}..{FAST[-1]}, slow {SLOW[0]}..{SLOW[-1]}), fee 0.1 %, all in, "
          f"best of {args.repeat}, one thread each")
    label = f"real 1m candles ({', '.join(f.name.split('-')[0] for f in files)})"
    sets = [(label, real)]
    if not args.no_synthetic:
        sets.append(("synthetic year of 1m candles", [synthetic_year()]))
    for name in args.strategies.split(","):
        for title, series in sets:
            if name == "sma_cross":
                report(title, series, args.repeat, vbt, pd)
            else:
                report_strategy(name, title, series, args.repeat, vbt, pd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
