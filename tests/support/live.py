"""Helpers of the live tests: fills made up by hand (prices and quantities as decimal text),
journals of paper runs on real candles, and the live command run against the emulator with its
replay clock stepped bar by bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.broker.base import Fill
from binance_cluster.types import interval_ms

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC


def fake_fill(symbol: str, trade_id: int, side: str, price: str, qty: str, commission: str, asset: str,
              time_ms: int = T0, order_id: int = 1) -> Fill:
    """A Fill whose quote quantity is price x quantity."""
    return Fill(symbol=symbol, order_id=order_id, trade_id=trade_id, side=side, price=Decimal(price),
                qty=Decimal(qty), quote_qty=Decimal(price) * Decimal(qty), commission=Decimal(commission),
                commission_asset=asset, time_ms=time_ms)


# -- running the live command against the emulator, its replay clock stepped bar by bar ------


KEY = "bcLiveKeyQ7m2Xv9Lp4Rt8Wn3Zy6Hs1Jd5Fg0Kc2Ve7Bu4"
SECRET = "bcLiveSecret3Hq8Zr5Mv2Xk9Np4Wt7Lc1Yb6Fs0Jg3Dd8"
ENV = {"TEST_BINANCE_API_KEY": KEY, "TEST_BINANCE_API_SEC": SECRET}


def write_accounts(path: Path, cash: float, fee_rate: float, key: str = KEY,
                   secret: str = SECRET) -> Path:
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


def copy_history(source: CandleStore, root: Path, symbols, until_ms: int) -> CandleStore:
    """A store holding the 1m candles of `source` before `until_ms` (the live loop's history)."""
    live = CandleStore(root)
    for s in symbols:
        live.append(s, "1m", source.read(s, "1m", None, until_ms), source="tests: history")
    return live


@dataclass
class SteppedRun:
    """The outcome of a stepped live run: exit code, output, wall seconds, bars seen."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    bars: list = field(default_factory=list)


def live_command(job: Path, base_url: str, bars: int, ranks: int, mode: str = "testnet",
                 extra: tuple = ()) -> list[str]:
    """The launch of jobs/live.sh: rank 0 with the environment, the worker ranks (an MPMD
    section of their own) with the key variables emptied."""
    from binance_cluster.exchange.broker.keys import LIVE_VARS, TEST_VARS

    program = [sys.executable, "-m", "binance_cluster", "live", str(job), "--mode", mode,
               "--base-url", base_url, "--max-bars", str(bars), *extra]
    cmd = [str(Path(sys.executable).parent / "mpirun"), "-n", "1", *program]
    if ranks > 1:
        cmd += [":", "-n", str(ranks - 1)]
        for name in LIVE_VARS + TEST_VARS:
            cmd += ["-env", name, ""]
        cmd += program
    return cmd


def run_stepped(job: Path, base_url: str, control, first_bar: int, bars: int, bar_ms: int,
                heartbeat: Path, ranks: int = 2, mode: str = "testnet", env: dict | None = None,
                bar_timeout: float = 60.0, extra: tuple = (), on_bar=None) -> SteppedRun:
    """`mpirun ... binance-cluster live JOB --max-bars BARS` (`live_command`) with the emulator's
    replay clock at each bar's close in turn: set to the first close, then stepped one bar once
    the heartbeat shows the bar handled. `on_bar(k, process)` runs after bar k was handled."""
    control.set_replay(first_bar + bar_ms)
    cmd = live_command(job, base_url, bars, ranks, mode, extra)
    full_env = dict(os.environ)
    full_env.update(ENV if env is None else env)
    started = time.monotonic()
    logs = Path(heartbeat).parent
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "live.stdout", logs / "live.stderr"
    with open(out_path, "w") as out_file, open(err_path, "w") as err_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, text=True, env=full_env)
    seen = []
    try:
        for k in range(bars):
            want = first_bar + k * bar_ms
            deadline = time.monotonic() + bar_timeout
            while True:
                beat = read_heartbeat(heartbeat)
                if beat is not None and beat["bar_ms"] >= want:
                    seen.append(beat["bar_ms"])
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            if on_bar is not None:
                on_bar(k, proc)
            control.set_replay(want + 2 * bar_ms)
        proc.wait(timeout=bar_timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return SteppedRun(proc.returncode, out_path.read_text(), err_path.read_text(),
                      time.monotonic() - started, seen)


class InProcessLoop:
    """Rank 0 of a one-rank `binance-cluster live JOB --mode MODE --base-url URL`, built in this
    process as the command builds it (`commands.live._open`: broker, feed, journal reconciled,
    kill switch; then the loop and the start-up protection), driven bar by bar: `bar(open_ms)`
    sets the emulator's replay clock at that bar's close and lets the loop handle it. The
    clients retry fast (`retry`) so a request failed six times costs a fraction of a second.
    Use as a context manager (closes the journal and the store files)."""

    def __init__(self, job: Path, url: str, control, mode: str = "testnet", retry=None):
        import signal

        from binance_cluster.backtest.driver import _load_kernels
        from binance_cluster.commands.live import _open
        from binance_cluster.live.job import load_live_job
        from binance_cluster.live.loop import LiveLoop, SymbolWorker
        from binance_cluster.live.venue import Venue
        from binance_cluster.parallel import SerialComm
        from support.broker import FAST_RETRY

        self.control = control
        live_job = load_live_job(job, mode)
        venue = Venue(mode, url)
        rank0: dict = {}
        term = signal.getsignal(signal.SIGTERM)
        try:
            _open(live_job, venue, 0, rank0)
        finally:
            signal.signal(signal.SIGTERM, term)      # the kill switch stays out of pytest
        comm = SerialComm()
        _load_kernels(live_job.job, comm)
        self.worker = SymbolWorker(live_job, venue.public_url)
        self.lines: list[str] = []
        self.loop = LiveLoop(live_job, rank0["broker"], rank0["market"], rank0["journal"], comm,
                             self.worker, rank0["kill"], mode=mode, out=self.lines.append)
        self.reconciled = rank0["reconciled"]
        self.journal = rank0["journal"]
        retry = retry or FAST_RETRY
        if hasattr(self.loop.broker, "_transport"):          # a BinanceBroker's re-sends too
            self.loop.broker.config = replace(self.loop.broker.config, retry=retry)
        for transport in (getattr(self.loop.broker, "_transport", None),
                          getattr(self.loop.market, "client", None),
                          getattr(self.worker.feed, "client", None)):
            if transport is not None:
                transport.retry = retry
        now = self.loop.exchange_now()
        self.restored = self.loop.exits.start(now - now % self.loop.bar_ms)

    def bar(self, open_ms: int) -> None:
        """Handle the bar opening at `open_ms` (the replay clock set to its close)."""
        self.control.set_replay(open_ms + self.loop.bar_ms)
        self.loop.run(max_bars=self.loop.handled + 1)
        assert self.loop.last_bar == open_ms, (self.loop.last_bar, open_ms)

    def __enter__(self) -> "InProcessLoop":
        return self

    def __exit__(self, *exc) -> None:
        self.worker.close()
        self.journal.close()


def read_heartbeat(path: Path) -> dict | None:
    """The live job's heartbeat (None before the first bar)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def journal_trades(journal_path: Path) -> tuple[list[dict], list[dict]]:
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
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
        time.sleep(0.1)
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


# The in-process loop tests' replay (`InProcessLoop`): three real symbols, 15m bars from the
# second of two days, 10,000 USDT, Binance's taker fee and a small slippage; sma_cross 3/8
# trading on its signals only, or protected by a stop and a target.
REPLAY_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
REPLAY_INTERVAL = "15m"
REPLAY_FIRST = DAY0 + 86_400_000
REPLAY_MONEY = (10_000.0, 0.001, 0.0002)          # cash, fee rate, slippage
SIGNALS_ONLY = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\n"
PROTECTED = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = 0.006\ntake_profit = 0.008\n"


def replay_job(root: Path, url: str, name: str, strategy_text: str, bars: int,
               extra: str = "") -> Path:
    """The in-process loop tests' sma_cross job on the replay (`REPLAY_*`) for `bars` bars,
    written to root/NAME.toml with its store and output under `root`."""
    cash, fee, slippage = REPLAY_MONEY
    bar_ms = interval_ms(REPLAY_INTERVAL)
    job = root / f"{name}.toml"
    job.write_text(live_job_text("sma_cross", strategy_text, REPLAY_SYMBOLS, REPLAY_INTERVAL,
                                 root / "live-store", root / "out", REPLAY_FIRST,
                                 REPLAY_FIRST + bars * bar_ms,
                                 exchange_rules(url, REPLAY_SYMBOLS), cash, fee, slippage,
                                 extra=extra))
    return job


def build_source(shared_data: Path, root: Path, symbols, days: int) -> CandleStore:
    """The emulator's store: `days` days of real 1m candles of `symbols` from DAY0."""
    from support.real_data import read_real

    store = CandleStore(root)
    for s in symbols:
        store.append(s, "1m", read_real(shared_data, s, DAY0, DAY0 + days * 86_400_000),
                     source="tests: shared_data")
    return store


def live_job_text(strategy: str, params_and_risk: str, symbols, interval: str, store: Path,
                  output: Path, first: int | None, end: int, rules: str, cash: float, fee: float,
                  slippage: float, extra: str = "", top: str = "") -> str:
    """A portfolio job for `backtest` over [first, end) (first None: from the first candle)
    and `live` (its [live] table polls the clock every 20 ms); `params_and_risk` is
    "[strategy.params] ... [risk] ..." text, `top` more top-level keys, `extra` more tables."""
    params, risk = params_and_risk.split("[risk]\n")
    start = "" if first is None else f"start = {first}\n"
    return (f'{top}store = "{store}"\nsymbols = {json.dumps(list(symbols))}\ninterval = "{interval}"\n'
            f'{start}end = {end}\nmode = "portfolio"\noutput = "{output}"\n'
            f'[strategy]\nname = "{strategy}"\n{params}'
            f'[risk]\ninitial_cash = {cash}\nstake = 0.3\nfee_rate = {fee}\nslippage = {slippage}\n'
            f'max_positions = 3\n{risk}\n{rules}\n[live]\npoll_seconds = 0.02\n{extra}')


def stepped_emulator(source: CandleStore, tmp_path: Path, first: int, bar_ms: int, cash: float,
                     fee: float, slippage: float):
    """An emulator on `source` for a stepped live run: frozen replay clock at the first close,
    no weight limit, one account (`write_accounts`), fills at the job's slippage, the forming
    candle served (its open is the next market price)."""
    from binance_cluster.exchange.emulator import EmulatorConfig, run_emulator

    accounts = write_accounts(tmp_path / "accounts.toml", cash, fee)
    return run_emulator(EmulatorConfig(store=source.root, speed=0.0, start_ms=first + bar_ms,
                                       weight_limit=0, accounts=accounts,
                                       slippage_bps=slippage * 10_000, forming_candle="synthetic"))


def paper_journal(path, candles: dict, job: str = "report-test", every: int = 45, hold: int = 20,
                  stake: str = "500", max_open: int = 1, bad_every: int = 7) -> None:
    """A journal the journal module writes from a paper run over real candles (`candles`:
    symbol -> 1m Candles, all on the same bars): real market orders sent to a `PaperBroker`
    (fills by the project's order engine), every answer, fill, error and risk refusal journaled.

    Symbol k buys `stake` quote at the close of every `every`-th bar (offset by k * every // len)
    and sells what it holds `hold` to 2 x `hold` bars later. Entries go through `live.risk.check_entry` with
    at most `max_open` open positions (refusals journaled); every `bad_every`-th entry asks for
    1 quote, which the minimum notional refuses (an exchange error journaled). A decision's
    `detail["price"]` is the close it was taken at; each bar's equity is the paper account's
    quote plus what it holds at the close.
    """
    from binance_cluster.exchange.broker import OrderRequest, client_order_id
    from binance_cluster.exchange.broker.feeds import CandleFeed
    from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig
    from binance_cluster.exchange.emulator.symbols import derive_spec
    from binance_cluster.errors import ExchangeError
    from binance_cluster.live.journal import BarRecord, Journal
    from binance_cluster.live.risk import AccountView, RiskLimits, check_entry

    symbols = list(candles)
    first = candles[symbols[0]]
    filters = {s: derive_spec(s, float(c.close[0])) for s, c in candles.items()}
    feed = CandleFeed(candles, filters, now_ms=int(first.open_time[0]))
    paper = PaperBroker(feed, {"USDT": "10000"}, PaperConfig(slippage=0.0005))
    limits = RiskLimits(max_open_positions=max_open)
    held: dict[str, tuple[int, Decimal]] = {}      # symbol -> (sell bar, quantity)
    entries = 0
    with Journal(path, job=job) as j:
        for s, f in filters.items():
            j.record_symbol(s, f.base_asset, f.quote_asset)
        for i in range(len(first) - 1):
            bar_ms = int(first.open_time[i])
            close_ms = bar_ms + 60_000
            feed.set_now(close_ms + 40)            # the next candle is forming: its open fills
            started = time.perf_counter()
            orders, last_order = 0, None
            decided = close_ms + 40 + int((time.perf_counter() - started) * 1000) + 1
            for k, s in enumerate(symbols):
                close = Decimal(repr(float(candles[s].close[i])))
                request = None
                if s in held and held[s][0] == i:
                    qty = filters[s].floor_qty(held.pop(s)[1])
                    request = OrderRequest(s, "SELL", "MARKET", client_order_id(job, s, bar_ms, "exit"),
                                           quantity=qty)
                    j.record_decision(bar_ms, s, "exit", bar_ms, detail={"price": str(close)},
                                      time_ms=decided)
                elif s not in held and (i + k * every // len(symbols)) % every == every - 1:
                    entries += 1
                    amount = "1" if entries % bad_every == 0 else stake
                    refusal = check_entry(s, Decimal(amount), limits,
                                          AccountView(len(held), Decimal(0), Decimal(0)), False)
                    j.record_decision(bar_ms, s, "entry", bar_ms, detail={"price": str(close)},
                                      time_ms=decided)
                    if refusal is not None:
                        j.record_refusal(bar_ms, s, refusal.rule, refusal.detail, time_ms=decided)
                        continue
                    request = OrderRequest(s, "BUY", "MARKET", client_order_id(job, s, bar_ms, "entry"),
                                           quote_amount=amount)
                if request is None:
                    continue
                sent = decided + int((time.perf_counter() - started) * 1000)
                j.record_intent(request, "exit" if request.side == "SELL" else "entry", bar_ms,
                                time_ms=sent)
                try:
                    order = paper.submit(request)
                except ExchangeError as exc:
                    j.record_error(request.client_id, str(exc), exc.code, time_ms=sent)
                    continue
                j.record_answer(order, time_ms=sent)
                orders, last_order = orders + 1, sent
                if request.side == "BUY":
                    base = filters[s].base_asset
                    held[s] = (i + hold + (entries * 7) % hold, paper.balances()[base].free)
            equity = Decimal(0)
            for asset, balance in paper.balances().items():
                amount = balance.free + balance.locked
                if asset == "USDT":
                    equity += amount
                else:
                    s = next(x for x in symbols if filters[x].base_asset == asset)
                    equity += amount * Decimal(repr(float(candles[s].close[i])))
            j.record_bar(BarRecord(bar_ms=bar_ms, close_ms=close_ms, decided_ms=decided,
                                   last_order_ms=last_order, orders=orders, equity=equity,
                                   skipped={}))


# -- comparing live runs with the backtest (the parity, crash and fault proofs) --------------


def same_trades(backtest: dict, closed: list[dict], still_open: list[dict], end: int,
                bar_ms: int | None = None) -> int:
    """Assert the live fills make the backtest's trades; returns how many. With `bar_ms`, an
    exit's time is its bar's (a resting stop or target fills inside the bar; the backtest
    gives the bar's open)."""
    def exit_bar(t: dict) -> int:
        return t["exit"]["time"] - t["exit"]["time"] % bar_ms if bar_ms else t["exit"]["time"]

    n = len(backtest["pnl"])
    ended = backtest["exit_reason"] == "end"
    # the backtest decides nothing at its last close and sells there (reason "end"); the live
    # loop decided at that close and sent those orders at the next open, `end`
    live = sorted((t for t in closed if t["exit"]["time"] < end),
                  key=lambda t: (t["entry"]["time"], t["symbol"]))
    still_open = still_open + [t for t in closed if t["exit"]["time"] >= end]
    want = sorted((i for i in range(n) if not ended[i]),
                  key=lambda i: (backtest["entry_time_ms"][i], backtest["symbol"][i]))
    assert [(t["symbol"], t["entry"]["time"], exit_bar(t)) for t in live] == \
        [(backtest["symbol"][i], backtest["entry_time_ms"][i], backtest["exit_time_ms"][i]) for i in want]
    for t, i in zip(live, want):
        assert float(t["entry"]["price"]) == backtest["entry_price"][i]
        assert float(t["exit"]["price"]) == backtest["exit_price"][i]
        assert float(t["entry"]["qty"]) == backtest["quantity"][i]
        assert float(t["exit"]["qty"]) == float(backtest["sold_quantity"][i])   # read as text
        fees = t["entry"]["fee"] + t["exit"]["fee"]
        assert abs(float(fees) - backtest["fees"][i]) <= 1e-8, (t, backtest["fees"][i])
        pnl = t["exit"]["quote"] - t["exit"]["fee"] - t["entry"]["quote"]
        assert abs(float(pnl) - backtest["pnl"][i]) <= 1e-8
    # what the backtest sells at its end the live account held then, bought at the same fill
    held = sorted((t["symbol"], t["entry"]["time"], float(t["entry"]["qty"])) for t in still_open
                  if t["entry"]["time"] < end)
    assert held == sorted((backtest["symbol"][i], backtest["entry_time_ms"][i], backtest["quantity"][i])
                          for i in range(n) if ended[i])
    return len(want)
