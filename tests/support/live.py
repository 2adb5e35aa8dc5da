"""Helpers of the live tests: fills made up by hand (prices and quantities as decimal text)."""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.broker.base import Fill

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC


def fake_fill(symbol: str, trade_id: int, side: str, price: str, qty: str, commission: str, asset: str,
              time_ms: int = T0, order_id: int = 1) -> Fill:
    """A Fill whose quote quantity is price x quantity."""
    return Fill(symbol=symbol, order_id=order_id, trade_id=trade_id, side=side, price=Decimal(price),
                qty=Decimal(qty), quote_qty=Decimal(price) * Decimal(qty), commission=Decimal(commission),
                commission_asset=asset, time_ms=time_ms)


# -- running the live command against the emulator, its replay clock stepped bar by bar ------

import json as _json
import os as _os
import subprocess as _subprocess
import sys as _sys
import time as _time
from dataclasses import dataclass as _dataclass, field as _field
from pathlib import Path as _Path

from binance_cluster.candles.store import CandleStore

KEY = "bcLiveKeyQ7m2Xv9Lp4Rt8Wn3Zy6Hs1Jd5Fg0Kc2Ve7Bu4"
SECRET = "bcLiveSecret3Hq8Zr5Mv2Xk9Np4Wt7Lc1Yb6Fs0Jg3Dd8"
ENV = {"TEST_BINANCE_API_KEY": KEY, "TEST_BINANCE_API_SEC": SECRET}


def write_accounts(path: _Path, cash: float, fee_rate: float, key: str = KEY,
                   secret: str = SECRET) -> _Path:
    """An emulator accounts file: one account holding `cash` USDT, both commissions `fee_rate`."""
    path.write_text(f'[{key}]\nsecret = "{secret}"\nbalances = {{ USDT = "{cash!r}" }}\n'
                    f'maker_commission = "{fee_rate!r}"\ntaker_commission = "{fee_rate!r}"\n')
    return path


def exchange_rules(base_url: str, symbols) -> str:
    """A job's [rules.SYMBOL] tables equal to the emulator's filters (the backtest's rules)."""
    from binance_cluster.exchange.broker.feeds import ExchangeFeed

    feed = ExchangeFeed(base_url)
    lines = []
    for s in symbols:
        r = feed.filters(s).rules()
        lines += [f"[rules.{s}]", f"tick_size = {r.tick_size!r}", f"step_size = {r.step_size!r}",
                  f"min_notional = {r.min_notional!r}", ""]
    return "\n".join(lines)


def copy_history(source: CandleStore, root: _Path, symbols, until_ms: int) -> CandleStore:
    """A store holding the 1m candles of `source` before `until_ms` (the live loop's history)."""
    live = CandleStore(root)
    for s in symbols:
        live.append(s, "1m", source.read(s, "1m", None, until_ms), source="tests: history")
    return live


@_dataclass
class SteppedRun:
    """The outcome of a stepped live run: exit code, output, wall seconds, bars seen."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    bars: list = _field(default_factory=list)


def live_command(job: _Path, base_url: str, bars: int, ranks: int, mode: str = "testnet",
                 extra: tuple = ()) -> list[str]:
    """The launch of jobs/live.sh: rank 0 with the environment, the worker ranks (an MPMD
    section of their own) with the key variables emptied."""
    from binance_cluster.exchange.broker.keys import LIVE_VARS, TEST_VARS

    program = [_sys.executable, "-m", "binance_cluster", "live", str(job), "--mode", mode,
               "--base-url", base_url, "--max-bars", str(bars), *extra]
    cmd = [str(_Path(_sys.executable).parent / "mpirun"), "-n", "1", *program]
    if ranks > 1:
        cmd += [":", "-n", str(ranks - 1)]
        for name in LIVE_VARS + TEST_VARS:
            cmd += ["-env", name, ""]
        cmd += program
    return cmd


def run_stepped(job: _Path, base_url: str, control, first_bar: int, bars: int, bar_ms: int,
                heartbeat: _Path, ranks: int = 2, mode: str = "testnet", env: dict | None = None,
                bar_timeout: float = 60.0, extra: tuple = (), on_bar=None) -> SteppedRun:
    """`mpirun ... binance-cluster live JOB --max-bars BARS` (`live_command`) with the emulator's
    replay clock at each bar's close in turn: set to the first close, then stepped one bar once
    the heartbeat shows the bar handled. `on_bar(k, process)` runs after bar k was handled."""
    control.set_replay(first_bar + bar_ms)
    cmd = live_command(job, base_url, bars, ranks, mode, extra)
    full_env = dict(_os.environ)
    full_env.update(ENV if env is None else env)
    started = _time.monotonic()
    logs = _Path(heartbeat).parent
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "live.stdout", logs / "live.stderr"
    with open(out_path, "w") as out_file, open(err_path, "w") as err_file:
        proc = _subprocess.Popen(cmd, stdout=out_file, stderr=err_file, text=True, env=full_env)
    seen = []
    try:
        for k in range(bars):
            want = first_bar + k * bar_ms
            deadline = _time.monotonic() + bar_timeout
            while True:
                beat = read_heartbeat(heartbeat)
                if beat is not None and beat["bar_ms"] >= want:
                    seen.append(beat["bar_ms"])
                    break
                if proc.poll() is not None or _time.monotonic() > deadline:
                    break
                _time.sleep(0.02)
            if proc.poll() is not None or _time.monotonic() > deadline:
                break
            if on_bar is not None:
                on_bar(k, proc)
            control.set_replay(want + 2 * bar_ms)
        proc.wait(timeout=bar_timeout)
    except _subprocess.TimeoutExpired:
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return SteppedRun(proc.returncode, out_path.read_text(), err_path.read_text(),
                      _time.monotonic() - started, seen)


def read_heartbeat(path: _Path) -> dict | None:
    """The live job's heartbeat (None before the first bar)."""
    try:
        return _json.loads(_Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def journal_trades(journal_path: _Path) -> tuple[list[dict], list[dict]]:
    """(closed trades, open positions) from a journal's fills: each BUY order opens a position,
    the next SELL order closes it; fees in quote (a base commission at its fill price)."""
    from binance_cluster.live.journal import Journal

    closed, opened = [], []
    with Journal(journal_path, readonly=True) as j:
        assets = j.assets()
        for symbol in sorted(assets):
            base, quote = assets[symbol]
            orders: dict[int, list] = {}
            for f in j.fills(symbol):
                orders.setdefault(f.order_id, []).append(f)
            position = None
            for fills in sorted(orders.values(), key=lambda fs: (fs[0].time_ms, fs[0].trade_id)):
                qty = sum(f.qty for f in fills)
                quote_qty = sum(f.quote_qty for f in fills)
                fee = sum(f.commission * (f.price if f.commission_asset == base else 1) for f in fills)
                row = dict(time=fills[0].time_ms, price=fills[0].price, qty=qty, quote=quote_qty, fee=fee)
                if fills[0].side == "BUY":
                    position = dict(symbol=symbol, entry=row)
                    opened.append(position)
                elif position is not None:
                    position["exit"] = row
                    opened.remove(position)
                    closed.append(position)
                    position = None
    return closed, opened


def rank_pid(rank: int, marker: str, timeout: float = 10.0) -> int:
    """The pid of the MPI rank `rank` whose command line contains `marker` (from /proc)."""
    deadline = _time.monotonic() + timeout
    while _time.monotonic() < deadline:
        for entry in _Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker.encode() in cmdline and b"binance_cluster" in cmdline \
                    and f"PMI_RANK={rank}".encode() in environ:
                return int(entry.name)
        _time.sleep(0.1)
    raise AssertionError(f"no process of rank {rank} running {marker}")


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable memory of process `pid` holds `needle` (its maps, via /proc/PID/mem)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(lo)
                if needle in mem.read(hi - lo):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


DAY0 = 1_746_403_200_000        # 2025-05-05 00:00 UTC: every real symbol but ADAUSDT has candles


def build_source(shared_data: _Path, root: _Path, symbols, days: int) -> CandleStore:
    """The emulator's store: `days` days of real 1m candles of `symbols` from DAY0."""
    from support.real_data import read_real

    store = CandleStore(root)
    for s in symbols:
        store.append(s, "1m", read_real(shared_data, s, DAY0, DAY0 + days * 86_400_000),
                     source="tests: shared_data")
    return store


def live_job_text(strategy: str, params_and_risk: str, symbols, interval: str, store: _Path,
                  output: _Path, first: int | None, end: int, rules: str, cash: float, fee: float,
                  slippage: float, extra: str = "", top: str = "") -> str:
    """A portfolio job for `backtest` over [first, end) (first None: from the first candle)
    and `live` (its [live] table polls the clock every 20 ms); `params_and_risk` is
    "[strategy.params] ... [risk] ..." text, `top` more top-level keys, `extra` more tables."""
    params, risk = params_and_risk.split("[risk]\n")
    start = "" if first is None else f"start = {first}\n"
    return (f'{top}store = "{store}"\nsymbols = {_json.dumps(list(symbols))}\ninterval = "{interval}"\n'
            f'{start}end = {end}\nmode = "portfolio"\noutput = "{output}"\n'
            f'[strategy]\nname = "{strategy}"\n{params}'
            f'[risk]\ninitial_cash = {cash}\nstake = 0.3\nfee_rate = {fee}\nslippage = {slippage}\n'
            f'max_positions = 3\n{risk}\n{rules}\n[live]\npoll_seconds = 0.02\n{extra}')


def stepped_emulator(source: CandleStore, tmp_path: _Path, first: int, bar_ms: int, cash: float,
                     fee: float, slippage: float):
    """An emulator on `source` for a stepped live run: frozen replay clock at the first close,
    no weight limit, one account (`write_accounts`), fills at the job's slippage, the forming
    candle served (its open is the next market price)."""
    from binance_cluster.exchange.emulator import EmulatorConfig, run_emulator

    accounts = write_accounts(tmp_path / "accounts.toml", cash, fee)
    return run_emulator(EmulatorConfig(store=source.root, speed=0.0, start_ms=first + bar_ms,
                                       weight_limit=0, accounts=accounts,
                                       slippage_bps=slippage * 10_000, forming_candle="synthetic"))
