"""`binance-cluster fetch` with the real python-binance client against the emulator on 127.0.0.1."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from binance_cluster.errors import RetryableExchangeError
from binance_cluster.candles.fetch import FetchConfig, run_fetch
from binance_cluster.exchange.transport import RetryPolicy, TimeDeps
from binance_cluster.log import setup_logging
from binance_cluster.parallel import SerialComm, partition
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import MINUTE_MS, Candles
from support.emulator import (SYMBOLS, FakeTime, binance_client, build_store,  # noqa: F401
                               emulator, fresh_weight_window, same_candles, source_store)

START = "2025-05-01"


@pytest.fixture(autouse=True)
def _logging_to_this_test():
    setup_logging(0, 1, 0, False)  # bind the project's log handler to this test's stderr


def fetch(url: str, store_dir, symbols=SYMBOLS, deps: TimeDeps | None = None, **settings):
    config = FetchConfig(store=store_dir, symbols=tuple(symbols), start_ms=0, base_url=url,
                         **settings)
    return run_fetch(config, SerialComm(), deps or TimeDeps(), show_progress=False)


def assert_same_store(got: CandleStore, want: CandleStore, symbols=SYMBOLS,
                      until: int | None = None):
    for symbol in symbols:
        a = got.read(symbol, "1m")
        b = want.read(symbol, "1m", end=until)
        assert same_candles(b, a), symbol
        # extras the emulator names unknown are left to the store: none are invented
        assert set(a.extras) == set(b.extras), symbol


def test_fetch_into_empty_store_equals_the_source(emulator, source_store, store_dir, cli):
    with emulator() as (url, control):
        code, out, err = cli("fetch", "--store", store_dir, "--symbols", ",".join(SYMBOLS),
                             "--start", START, "--base-url", url, "--json")
        faults = control.faults()
    assert code == 0, err
    summary = json.loads(out)
    assert [r["symbol"] for r in summary] == list(SYMBOLS)
    assert all(r["added"] == 2600 and r["requests"] == 3 and r["gaps"] == 0 for r in summary)
    assert_same_store(CandleStore(store_dir), source_store)
    assert CandleStore(store_dir).attrs("BTCUSDT")["source"].startswith("binance klines via http")
    assert faults["total"] == 0 and faults["limiter"]["refused_429"] == 0


def test_resume_fetches_only_new_candles(emulator, source_store, store_dir):
    t = source_store.read("BTCUSDT", "1m").open_time
    with emulator(start_ms=int(t[1500])) as (url, control):
        first = fetch(url, store_dir)
        assert [r.added for r in first.reports] == [1500, 1500, 1500]
        control.advance_replay(90 * MINUTE_MS)
        second = fetch(url, store_dir)
        third = fetch(url, store_dir)
    assert [r.added for r in second.reports] == [90, 90, 90]
    assert all(r.requests == 1 for r in second.reports)
    assert [r.added for r in third.reports] == [0, 0, 0]
    assert_same_store(CandleStore(store_dir), source_store, until=int(t[1590]))


@pytest.mark.parametrize("mode", ["none", "synthetic"])
def test_never_stores_the_forming_candle(emulator, source_store, store_dir, mode):
    t = source_store.read("BTCUSDT", "1m").open_time
    now = int(t[2000]) + 25_000  # 25 s into candle 2000
    with emulator(start_ms=now, forming_candle=mode) as (url, control):
        served = binance_client(url).get_klines(symbol="BTCUSDT", interval="1m", limit=2)
        report = fetch(url, store_dir).reports
        control.advance_replay(10 * MINUTE_MS)
        fetch(url, store_dir)
    # the emulator does serve the in-progress candle in synthetic mode; fetch must drop it
    assert served[-1][0] == (t[2000] if mode == "synthetic" else t[1999])
    assert [r.last for r in report] == [int(t[1999])] * 3
    assert [r.added for r in report] == [2000] * 3
    assert_same_store(CandleStore(store_dir), source_store, until=int(t[2010]))


def test_paging_over_many_pages_with_small_pages(emulator, source_store, store_dir):
    with emulator() as (url, _):
        outcome = fetch(url, store_dir, symbols=["SOLUSDT"], page_limit=700)
    (report,) = outcome.reports
    assert report.added == 2600 and report.requests == 4  # 700 + 700 + 700 + 500
    assert_same_store(CandleStore(store_dir), source_store, symbols=["SOLUSDT"])


def test_429_and_418_wait_for_retry_after(emulator, source_store, store_dir):
    with emulator() as (url, control):
        fake = FakeTime()
        control.set_faults(queue=["429", "418", "429"], retry_after=7, paths=["/api/v3/klines"])
        outcome = fetch(url, store_dir, deps=fake.deps)
        counts = control.faults()["counts"]
    assert fake.slept == [7, 7, 7]
    assert counts["429"] == 2 and counts["418"] == 1
    assert sum(r.rate_limit_waits for r in outcome.reports) == 3
    assert_same_store(CandleStore(store_dir), source_store)


def test_5xx_and_delays_are_retried_with_capped_backoff(emulator, source_store, store_dir):
    with emulator() as (url, control):
        fake = FakeTime()
        control.set_faults(queue=["5xx", "delay", "5xx", "ok", "drop"], delay_s=3.0, status_5xx=502,
                           paths=["/api/v3/klines"])
        outcome = fetch(url, store_dir, deps=fake.deps, timeout_s=1.0,
                        retry=RetryPolicy(attempts=5, base_s=0.5, cap_s=1.5))
        counts = control.faults()["counts"]
    assert fake.slept == [0.5, 1.0, 1.5, 0.5]  # capped; a success resets the count
    assert (counts["5xx"], counts["delay"], counts["drop"]) == (2, 1, 1)
    assert sum(r.retries for r in outcome.reports) == 4
    assert_same_store(CandleStore(store_dir), source_store)


def test_retries_are_bounded_then_a_clear_error(emulator, store_dir, cli):
    with emulator() as (url, control):
        control.set_faults(rates={"5xx": 1.0}, status_5xx=503, paths=["/api/v3/klines"])
        outcome = fetch(url, store_dir, symbols=["BTCUSDT"], deps=FakeTime().deps,
                        retry=RetryPolicy(attempts=3))
        code, out, err = cli("fetch", "--store", store_dir, "--symbols", "ETHUSDT", "--start",
                             START, "--base-url", url, "--attempts", "2", "--no-progress")
        counts = control.faults()["counts"]
    fake = FakeTime()
    with pytest.raises(RetryableExchangeError, match=r"exchangeInfo: giving up after 2 attempts "
                                                     r"at http://127\.0\.0\.1:\d+: Connection"):
        fetch(url, store_dir / "never", deps=fake.deps, retry=RetryPolicy(attempts=2))
    assert fake.slept == [0.5] and not (store_dir / "never").exists()  # the emulator is gone
    (failure,) = outcome.failures
    assert f"BTCUSDT klines: giving up after 3 attempts at {url}: HTTP 503" in failure.error
    assert code == 1
    assert "fetch: 1 of 1 symbols failed" in err and "ETHUSDT klines: giving up after 2" in err
    assert counts["5xx"] == 3 + 2


def test_weight_header_is_read_and_respected(emulator, source_store, store_dir):
    # exchangeInfo (20) + time (1) + 9 klines pages (2 each) = 39 > 30: one window is not enough
    with emulator(weight_limit=30) as (url, control):
        fresh_weight_window(control)
        fake = FakeTime(control)
        outcome = fetch(url, store_dir, deps=fake.deps)
        limiter = control.faults()["limiter"]
    assert sum(r.throttle_waits for r in outcome.reports) == 1
    assert len(fake.slept) == 1 and 0.5 <= fake.slept[0] <= 60.5
    assert limiter["refused_429"] == 0 and limiter["refused_418"] == 0
    assert_same_store(CandleStore(store_dir), source_store)


def test_unknown_symbol_exits_2_and_leaves_the_store_untouched(emulator, store_dir, cli):
    with emulator() as (url, _):
        assert cli("fetch", "--store", store_dir, "--symbols", "BTCUSDT", "--start", START,
                   "--base-url", url, "--end", "2025-05-05", "--no-progress")[0] == 0
        before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in store_dir.iterdir()}
        rows = CandleStore(store_dir).count("BTCUSDT", "1m")
        code, out, err = cli("fetch", "--store", store_dir, "--symbols", "BTCUSDT,FOOUSDT,ETHUSDT",
                             "--start", START, "--base-url", url)
        code2, _, err2 = cli("fetch", "--store", store_dir, "--symbols", "FOOUSDT,BARUSDT",
                             "--start", START, "--base-url", url)
    assert code == 2 and code2 == 2
    assert err.strip().splitlines()[-1] == \
        "binance-cluster: error: fetch: symbol FOOUSDT is not listed by the exchange (-1121)"
    assert "symbols FOOUSDT, BARUSDT are not listed by the exchange (-1121)" in err2
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in store_dir.iterdir()}
    assert after == before and CandleStore(store_dir).count("BTCUSDT", "1m") == rows
    assert not (store_dir / "ETHUSDT.h5").exists()


def test_exchange_gaps_are_reported(shared_data, tmp_path, emulator, store_dir, cli):
    gappy = build_store(tmp_path / "gappy", shared_data, symbols=("BTCUSDT",),
                        drop={"BTCUSDT": list(range(1200, 1217)) + [2000, 2001, 2002]})
    with emulator(store=gappy) as (url, _):
        code, out, err = cli("fetch", "--store", store_dir, "--symbols", "BTCUSDT", "--start",
                             START, "--base-url", url, "--json", "--no-progress")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["gaps"], row["missing"], row["largest_gap"], row["added"]) == (2, 20, 17, 2580)
    assert "BTCUSDT 1m: the exchange has 2 gap(s) in the fetched range: 20 candles missing, " \
           "the largest 17 (17m)" in err
    assert same_candles(gappy.read("BTCUSDT", "1m"), CandleStore(store_dir).read("BTCUSDT", "1m"))


@pytest.mark.mpi
def test_fetch_under_mpirun_splits_symbols_and_equals_serial(emulator, source_store, store_dir,
                                                             tmp_path, mpirun):
    with emulator() as (url, _):
        proc = mpirun(2, "-m", "binance_cluster", "fetch", "--store", store_dir, "--symbols",
                      ",".join(SYMBOLS), "--start", START, "--base-url", url, "--json",
                      timeout=120)
        serial = fetch(url, tmp_path / "serial")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    ranks = {r["symbol"]: r["rank"] for r in summary}
    shares = partition([2600.0] * 3, 2)
    assert ranks == {SYMBOLS[i]: rank for rank, share in enumerate(shares) for i in share}
    pids = {r["rank"]: r["pid"] for r in summary}
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert proc.stderr.count("100.0%") == 1  # one progress bar, at rank 0
    got, want = CandleStore(store_dir), CandleStore(tmp_path / "serial")
    for symbol in SYMBOLS:
        assert same_candles(want.read(symbol, "1m"), got.read(symbol, "1m"))
    assert [r.added for r in serial.reports] == [r["added"] for r in summary] == [2600] * 3
    assert_same_store(got, source_store)


def test_fetch_other_interval_from_the_emulators_resampling(emulator, source_store, store_dir):
    from binance_cluster.candles.resample import resample

    with emulator() as (url, _):
        (report,) = fetch(url, store_dir, symbols=["ETHUSDT"], interval="1h").reports
    source = source_store.read("ETHUSDT", "1m")
    want = resample(source, "1h").columns()
    for name, col in want.items():  # sums of d-decimal values are served at d decimals
        if col.dtype.kind == "f":
            x = source.column(name)  # the fewest decimals holding every value (at most 8)
            digits = next((d for d in range(9)
                           if np.allclose(np.round(x, d), x, rtol=1e-13, atol=0)), 8)
            want[name] = np.round(col, digits)
    got = CandleStore(store_dir).read("ETHUSDT", "1h")
    assert report.added == len(want["open_time"]) == 43
    assert same_candles(Candles.from_columns(want), got)


def test_unknown_extras_are_left_to_the_store_to_mark(emulator, source_store, store_dir):
    # a store whose BTCUSDT group has the four extras; the emulator's BTCUSDT lacks them
    from support.emulator import with_extras

    btc = source_store.read("BTCUSDT", "1m")
    known = with_extras(btc.slice(0, 100))
    CandleStore(store_dir).append("BTCUSDT", "1m", known)
    with emulator() as (url, _):
        (report,) = fetch(url, store_dir, symbols=["BTCUSDT"]).reports
    got = CandleStore(store_dir).read("BTCUSDT", "1m")
    assert report.added == 2500 and same_candles(btc, got, extras=False)
    assert np.array_equal(got.extras["trades"][:100], known.extras["trades"])
    assert np.all(got.extras["trades"][100:] == -1)  # unknown, not the zeros on the wire
    for name in ("quote_volume", "taker_buy_base", "taker_buy_quote"):
        assert np.array_equal(got.extras[name][:100], known.extras[name])
        assert np.all(np.isnan(got.extras[name][100:]))
