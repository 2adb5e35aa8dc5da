"""The emulator's market-data half, exercised with the real python-binance client over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import numpy as np
import pytest
import requests
from binance.exceptions import BinanceAPIException

from binance_cluster.exchange.emulator import EmulatorConfig, FaultConfig, run_emulator
from binance_cluster.errors import ConfigError
from binance_cluster.candles.resample import resample
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import DAY_MS, MINUTE_MS, Candles
from support.emulator import (binance_client, build_store, emulator, first_open,  # noqa: F401
                               fresh_weight_window, source_store, with_extras)
from support.real_data import first_rows, load_real

HOUR_MS = 60 * MINUTE_MS


def api_error(fn, *args, **kwargs) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        fn(*args, **kwargs)
    return info.value


# -- klines ----------------------------------------------------------------------------------
def test_kline_rows_follow_the_binance_shape_and_replay_the_store_exactly(emulator, source_store):
    with emulator() as (url, _):
        client = binance_client(url)
        rows = client.get_klines(symbol="ETHUSDT", interval="1m", limit=1000,
                                 startTime=first_open(source_store, "ETHUSDT"))
    stored = source_store.read("ETHUSDT", "1m")
    assert len(rows) == 1000
    for row in rows[:3] + rows[-3:]:
        assert len(row) == 12
        assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
        assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
        assert row[11] == "0"
        assert row[6] == row[0] + MINUTE_MS - 1
        assert len(row[1].split(".")[1]) >= 8  # Binance's 8-decimal strings
    t = np.array([r[0] for r in rows])
    assert np.array_equal(t, stored.open_time[:1000])
    for i, name in ((1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume"),
                    (7, "quote_volume"), (9, "taker_buy_base"), (10, "taker_buy_quote")):
        got = np.array([float(r[i]) for r in rows])
        assert np.array_equal(got, stored.column(name)[:1000]), name
    assert [r[8] for r in rows] == stored.extras["trades"][:1000].tolist()


UNKNOWN = "X-Replay-Unknown-Fields"
ALL_EXTRAS = "quote_volume,trades,taker_buy_base,taker_buy_quote"


def test_unknown_extras_are_sent_as_zeros_and_named_in_a_header(emulator, source_store,
                                                                shared_data, tmp_path):
    with emulator() as (url, _):
        client = binance_client(url)
        btc = client.get_klines(symbol="BTCUSDT", interval="1m", limit=3)
        btc_header = client.response.headers.get(UNKNOWN)
        btc_1h = client.get_klines(symbol="BTCUSDT", interval="1h", limit=3)
        btc_1h_header = client.response.headers.get(UNKNOWN)
        client.get_klines(symbol="ETHUSDT", interval="1m", limit=3)
        eth_header = client.response.headers.get(UNKNOWN)
    for row in btc + btc_1h:  # never "NaN" or -1, which Binance never sends
        assert (row[7], row[8], row[9], row[10]) == ("0.00000000", 0, "0.00000000", "0.00000000")
    assert btc_header == btc_1h_header == ALL_EXTRAS
    assert eth_header is None  # ETHUSDT's store has all four
    # a group with extras whose later rows lack them: the header names a field only for
    # answers in which every row lacks it
    eth = with_extras(first_rows(shared_data, "ETHUSDT", 300))
    store = CandleStore(tmp_path / "mixed")
    store.append("ETHUSDT", "1m", eth.slice(0, 200))
    plain = {k: v for k, v in eth.slice(200, 300).columns().items()
             if k in ("open_time", "open", "high", "low", "close", "volume")}
    store.append("ETHUSDT", "1m", Candles.from_columns(plain))
    t = eth.open_time
    with emulator(store=store) as (url, _):
        client = binance_client(url)
        late = client.get_klines(symbol="ETHUSDT", interval="1m", startTime=int(t[200]))
        late_header = client.response.headers.get(UNKNOWN)
        across = client.get_klines(symbol="ETHUSDT", interval="1m", startTime=int(t[150]))
        across_header = client.response.headers.get(UNKNOWN)
    assert len(late) == 100 and late_header == ALL_EXTRAS
    assert len(across) == 150 and across_header is None
    assert float(across[0][7]) == eth.extras["quote_volume"][150]
    assert across[-1][7] == "0.00000000" and across[-1][8] == 0


def test_limit_default_clamp_and_invalid(emulator):
    with emulator() as (url, _):
        client = binance_client(url)
        assert len(client.get_klines(symbol="BTCUSDT", interval="1m")) == 500
        assert len(client.get_klines(symbol="BTCUSDT", interval="1m", limit=5000)) == 1000
        err = api_error(client.get_klines, symbol="BTCUSDT", interval="1m", limit=0)
    assert (err.status_code, err.code) == (400, -1130)


def test_time_range_rules(emulator, source_store):
    t = source_store.read("SOLUSDT", "1m").open_time
    with emulator() as (url, _):
        client = binance_client(url)

        def times(**kw):
            return [r[0] for r in client.get_klines(symbol="SOLUSDT", interval="1m", **kw)]

        assert times(limit=3) == t[-3:].tolist()                          # newest
        assert times(startTime=int(t[10]), limit=3) == t[10:13].tolist()  # oldest from start
        assert times(startTime=int(t[10]) - 30_000, limit=2) == t[10:12].tolist()
        assert times(endTime=int(t[50]), limit=3) == t[48:51].tolist()    # newest up to end
        assert times(startTime=int(t[5]), endTime=int(t[7]), limit=100) == t[5:8].tolist()
        assert times(startTime=int(t[-1]) + MINUTE_MS) == []
        err = api_error(client.get_klines, symbol="SOLUSDT", interval="1m",
                        startTime=int(t[9]), endTime=int(t[8]))
    assert (err.status_code, err.code) == (400, -1023)


def test_errors_bad_interval_bad_symbol_missing_and_unread_parameters(emulator):
    with emulator() as (url, _):
        client = binance_client(url)
        bad_interval = api_error(client.get_klines, symbol="BTCUSDT", interval="7m")
        bad_symbol = api_error(client.get_klines, symbol="FOOUSDT", interval="1m")
        missing = requests.get(url + "/api/v3/klines?interval=1m", timeout=5)
        unread = requests.get(url + "/api/v3/klines?symbol=BTCUSDT&interval=1m&limt=5", timeout=5)
        not_found = requests.get(url + "/api/v3/nothing", timeout=5)
    assert (bad_interval.status_code, bad_interval.code, bad_interval.message) == \
        (400, -1120, "Invalid interval.")
    assert (bad_symbol.status_code, bad_symbol.code, bad_symbol.message) == \
        (400, -1121, "Invalid symbol.")
    assert missing.status_code == 400 and missing.json()["code"] == -1102
    assert "'symbol'" in missing.json()["msg"]
    assert unread.status_code == 400 and unread.json()["code"] == -1104
    assert not_found.status_code == 404 and not_found.json()["code"] == -1000
    assert "X-MBX-USED-WEIGHT-1M" in not_found.headers


def test_never_a_candle_after_the_replay_clock(emulator, source_store):
    t = source_store.read("BTCUSDT", "1m").open_time
    now = int(t[1000]) + 30_000  # half-way through candle 1000
    with emulator(start_ms=now) as (url, control):
        client = binance_client(url)
        rows = client.get_klines(symbol="BTCUSDT", interval="1m", limit=5)
        assert rows[-1][0] == t[999] and rows[-1][6] < now
        everything = client.get_klines(symbol="BTCUSDT", interval="1m", startTime=int(t[995]),
                                       endTime=int(t[-1]), limit=1000)
        assert [r[0] for r in everything] == t[995:1000].tolist()
        control.advance_replay(30_000)  # candle 1000 closes exactly now
        assert client.get_klines(symbol="BTCUSDT", interval="1m", limit=1)[0][0] == t[1000]
        control.set_replay(int(t[0]) - HOUR_MS)
        assert client.get_klines(symbol="BTCUSDT", interval="1m") == []


def test_synthetic_forming_candle(emulator, source_store):
    c = source_store.read("BTCUSDT", "1m")
    t = c.open_time
    now = int(t[1000]) + 30_000
    with emulator(start_ms=now, forming_candle="synthetic") as (url, control):
        client = binance_client(url)
        rows = client.get_klines(symbol="BTCUSDT", interval="1m", limit=3)
        opens = client.get_klines(symbol="BTCUSDT", interval="1m", startTime=int(t[998]))
        control.set_replay(int(t[-1]) + 5 * MINUTE_MS)  # after the data: nothing is forming
        after = client.get_klines(symbol="BTCUSDT", interval="1m", limit=2)
    assert [r[0] for r in rows] == t[998:1001].tolist()
    forming = rows[-1]
    assert forming[0] == t[1000] and forming[6] >= now
    price = float(c.open[1000])
    assert [float(x) for x in forming[1:5]] == [price] * 4
    assert forming[5] == "0.00000000" and forming[8] == 0
    assert [float(x) for x in rows[-2][1:5]] == [c.open[999], c.high[999], c.low[999], c.close[999]]
    assert [r[0] for r in opens] == t[998:1001].tolist()
    assert [r[0] for r in after] == t[-2:].tolist()


def test_other_intervals_are_resampled_from_1m_without_look_ahead(emulator, source_store):
    c = source_store.read("ETHUSDT", "1m")
    expected = resample(c, "1h")
    now = int(expected.open_time[20]) + 30 * MINUTE_MS  # half-way through hour 20
    with emulator(start_ms=now, forming_candle="synthetic") as (url, _):
        rows = binance_client(url).get_klines(symbol="ETHUSDT", interval="1h", limit=1000)
    closed = rows[:-1]
    assert [r[0] for r in closed] == expected.open_time[:20].tolist()
    assert np.array_equal([float(r[4]) for r in closed], expected.close[:20])
    assert np.array_equal([float(r[5]) for r in closed], np.round(expected.volume[:20], 3))
    assert rows[-1][0] == expected.open_time[20]
    assert float(rows[-1][2]) == expected.open[20]  # forming: high = its open, not the future high
    assert rows[-1][6] == rows[-1][0] + HOUR_MS - 1


def test_get_historical_klines_probe_and_paging_survive(emulator, source_store):
    c = source_store.read("SOLUSDT", "1m")
    with emulator() as (url, _):
        rows = binance_client(url).get_historical_klines("SOLUSDT", "1m", 0)
    assert [r[0] for r in rows] == c.open_time.tolist()
    assert np.array_equal([float(r[4]) for r in rows], c.close)


# -- exchangeInfo and tickers -----------------------------------------------------------------
def test_exchange_info_symbols_filters_and_params(emulator, source_store):
    with emulator() as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        info = client.get_exchange_info()
        one = client._get("exchangeInfo", data={"symbol": "SOLUSDT"})
        two = client._get("exchangeInfo", data={"symbols": '["BTCUSDT","ETHUSDT"]'})
        bad = api_error(client._get, "exchangeInfo", data={"symbols": '["BTCUSDT","FOOUSDT"]'})
        both = api_error(client._get, "exchangeInfo",
                         data={"symbol": "BTCUSDT", "symbols": '["ETHUSDT"]'})
        weight = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    assert [s["symbol"] for s in info["symbols"]] == list(source_store.symbols())
    assert info["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                     "intervalNum": 1, "limit": 6000}
    assert [s["symbol"] for s in one["symbols"]] == ["SOLUSDT"]
    assert [s["symbol"] for s in two["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert (bad.code, both.code) == (-1121, -1128)
    assert weight == 5 * 20
    btc = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert set(btc) == {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "MAX_NUM_ORDERS"}
    assert btc["PRICE_FILTER"]["tickSize"] == "0.01000000"    # as on Binance at ~95,000
    assert btc["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert btc["NOTIONAL"]["minNotional"] == "5.00000000"
    assert info["symbols"][0]["baseAsset"] == "BTC" and info["symbols"][0]["quoteAsset"] == "USDT"
    for entry in info["symbols"]:  # every replayed price lies on the symbol's tick grid
        tick = Decimal(next(f for f in entry["filters"]
                            if f["filterType"] == "PRICE_FILTER")["tickSize"])
        prices = source_store.read(entry["symbol"], "1m").close
        assert all((Decimal(repr(p)) / tick) % 1 == 0 for p in prices[:500].tolist())


def test_symbol_overrides_from_toml_and_bad_keys(source_store, tmp_path):
    good = tmp_path / "symbols.toml"
    good.write_text('[SOLUSDT]\ntick_size = "0.001"\nmin_notional = 10\nmax_num_orders = 50\n')
    with run_emulator(EmulatorConfig(store=source_store.root, speed=0,
                                     symbol_config=good)) as url:
        info = binance_client(url).get_exchange_info()
    sol = {f["filterType"]: f for f in info["symbols"][2]["filters"]}
    assert sol["PRICE_FILTER"]["tickSize"] == "0.00100000"
    assert sol["NOTIONAL"]["minNotional"] == "10.00000000"
    assert sol["MAX_NUM_ORDERS"]["maxNumOrders"] == 50
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"SOLUSDT": {"tick": "0.001"}}))
    with pytest.raises(ConfigError, match=r"bad.json: SOLUSDT: unknown key 'tick'"):
        run_emulator(EmulatorConfig(store=source_store.root, symbol_config=bad)).__enter__()


def test_tickers_book_and_average_price(emulator, source_store):
    c = source_store.read("BTCUSDT", "1m")
    now = int(c.open_time[700]) + 10_000  # candle 699 is the last closed one
    with emulator(start_ms=now, half_spread_bps=2.0) as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        price = client.get_symbol_ticker(symbol="BTCUSDT")
        everything = client.get_all_tickers()
        book = client.get_orderbook_ticker(symbol="BTCUSDT")
        books = client.get_orderbook_tickers(symbols='["SOLUSDT","BTCUSDT"]')
        weight = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
        avg = client.get_avg_price(symbol="BTCUSDT")
    last = c.close[699]
    assert float(price["price"]) == last
    assert [t["symbol"] for t in everything] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert [b["symbol"] for b in books] == ["SOLUSDT", "BTCUSDT"] and books[1] == book
    assert weight == 2 + 4 + 2 + 4  # one symbol 2, several or all 4
    bid, ask = Decimal(book["bidPrice"]), Decimal(book["askPrice"])
    assert bid < Decimal(repr(float(last))) < ask
    assert bid % Decimal("0.01") == 0 and ask % Decimal("0.01") == 0
    assert float(ask - bid) == pytest.approx(last * 4e-4, abs=0.02)
    vol = c.volume[695:700]
    assert float(avg["price"]) == pytest.approx(float((c.close[695:700] * vol).sum() / vol.sum()),
                                                abs=1e-8)
    assert avg["mins"] == 5 and avg["closeTime"] == int(c.open_time[699]) + MINUTE_MS - 1


# -- weight, limits, faults, clocks -----------------------------------------------------------
def test_weight_header_counts_every_request_per_minute_window(emulator):
    with emulator() as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        seen = []
        for call in (client.ping, client.get_server_time,
                     lambda: client.get_klines(symbol="BTCUSDT", interval="1m", limit=1),
                     client.get_exchange_info,
                     lambda: client.get_symbol_ticker(symbol="BTCUSDT"), client.get_all_tickers):
            call()
            seen.append(int(client.response.headers["X-MBX-USED-WEIGHT-1M"]))
        control.advance_server(60_000)
        client.ping()
        after = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    assert seen == [1, 2, 4, 24, 26, 30]
    assert after == 1


def test_weight_limit_gives_429_then_418_with_retry_after(emulator):
    with emulator(weight_limit=10, ban_after=2, ban_seconds=90) as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        for _ in range(10):
            client.ping()
        first = api_error(client.ping)
        second = api_error(client.ping)
        banned = api_error(client.ping)
        control.advance_server(60_000)  # a new window does not lift a ban
        still = api_error(client.ping)
        state = control.faults()["limiter"]
        control.advance_server(90_000)
        client.ping()
    assert (first.status_code, first.code) == (429, -1003)
    assert 1 <= int(first.response.headers["Retry-After"]) <= 60
    assert "current limit is 10 request weight per 1 MINUTE" in first.message
    assert second.status_code == 429
    assert (banned.status_code, banned.code) == (418, -1003)
    assert banned.response.headers["Retry-After"] == "90"
    assert still.status_code == 418 and 1 <= int(still.response.headers["Retry-After"]) <= 30
    assert state["refused_429"] == 2 and state["refused_418"] == 2


def test_faults_are_seeded_counted_and_logged(emulator):
    def pattern(control, client) -> list[int]:
        control.set_faults(seed=7, rates={"5xx": 0.3, "429": 0.1},
                           paths=["/api/v3/ping"], status_5xx=503, retry_after=4)
        out = []
        for _ in range(40):
            try:
                client.ping()
                out.append(200)
            except BinanceAPIException as exc:
                out.append(exc.status_code)
                if exc.status_code == 429:
                    assert exc.response.headers["Retry-After"] == "4"
        client.get_server_time()  # not in `paths`: never faulted
        return out

    with emulator(weight_limit=0) as (url, control):
        client = binance_client(url)
        first = pattern(control, client)
        again = pattern(control, client)
        counts = control.faults()
    assert first == again
    assert 5 <= first.count(503) <= 20 and first.count(429) >= 1
    assert counts["counts"]["5xx"] == first.count(503)
    assert counts["counts"]["429"] == first.count(429)
    assert len(counts["log"]) == counts["total"] == first.count(503) + first.count(429)
    assert all(e["path"] == "/api/v3/ping" for e in counts["log"])


def test_each_endpoint_draws_its_faults_from_its_own_seeded_sequence(emulator):
    """Traffic to one endpoint (another rank's klines, a clock poll) does not move the faults
    another endpoint's serial client meets; the counts are kept per endpoint too."""
    def pattern(control, client, noise: int) -> list[int]:
        control.set_faults(seed=3, rates={"5xx": 0.3}, retry_after=0)
        out = []
        for k in range(30):
            for _ in range(noise * (k % 3)):         # faulted too, from their own sequence
                try:
                    client.get_server_time()
                except BinanceAPIException:
                    pass
            try:
                client.ping()
                out.append(200)
            except BinanceAPIException as exc:
                out.append(exc.status_code)
        return out

    with emulator(weight_limit=0) as (url, control):
        client = binance_client(url)
        quiet = pattern(control, client, 0)
        noisy = pattern(control, client, 2)
        counts = control.faults()
    assert quiet == noisy and 3 <= quiet.count(503) <= 20
    by = counts["by_endpoint"]                      # of the noisy run (set_faults resets)
    assert set(by) == {"GET /api/v3/ping", "GET /api/v3/time"}
    assert by["GET /api/v3/ping"] == {"5xx": quiet.count(503)}
    assert by["GET /api/v3/time"]["5xx"] == counts["counts"]["5xx"] - quiet.count(503) > 0


def test_delay_drop_and_skew_faults(emulator):
    with emulator() as (url, control):
        client = binance_client(url, timeout=1.0)
        control.set_faults(queue=["delay", "drop"], delay_s=3.0)
        with pytest.raises(requests.exceptions.ReadTimeout):
            client.ping()
        with pytest.raises(requests.exceptions.ConnectionError):
            client.ping()
        assert client.ping() == {}
        control.set_faults(skew_ms=-5000)
        skewed = client.get_server_time()["serverTime"]
        wall = int(time.time() * 1000)
        counts = control.faults()["counts"]
    assert counts["skew"] == 1
    assert -6000 < skewed - wall < -4000


def test_admin_clock_set_advance_speed(emulator, source_store):
    t0 = first_open(source_store)
    with emulator(start_ms=t0) as (url, control):
        assert control.clock()["replay"] == t0
        assert control.advance_replay(90_000)["replay"] == t0 + 90_000
        assert control.set_replay(t0 + 5)["replay"] == t0 + 5
        before = time.monotonic()
        control.set_speed(600.0)
        time.sleep(0.1)
        moved = control.clock()["replay"] - (t0 + 5)
        elapsed = time.monotonic() - before
        with pytest.raises(RuntimeError, match="only moves forward"):
            control.advance_replay(-1)
    assert 600 * 100 <= moved <= 600 * elapsed * 1000  # 600 replay seconds per real second


def test_bad_configuration_is_one_clear_error(source_store, tmp_path):
    with pytest.raises(ConfigError, match="forming_candle"):
        EmulatorConfig(store=source_store.root, forming_candle="partial")
    with pytest.raises(ConfigError, match="does not exist"):
        run_emulator(EmulatorConfig(store=tmp_path / "nope")).__enter__()
    with pytest.raises(ConfigError, match="unknown fault kind"):
        FaultConfig.from_dict({"rates": {"timeout": 0.1}})


def test_exchange_sim_command_serves_until_sigterm(source_store, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "binance_cluster", "exchange-sim", "--store", str(source_store.root),
         "--port", "0", "--speed", "0", "--start", "2025-05-05T00:00"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = proc.stdout.readline()
        assert line.startswith("exchange-sim: listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        client = binance_client(url)
        assert client.ping() == {}
        rows = client.get_klines(symbol="BTCUSDT", interval="1m", limit=1)
        assert rows[0][6] < 1746403200000  # 2025-05-05 00:00 UTC
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    bad = subprocess.run([sys.executable, "-m", "binance_cluster", "exchange-sim", "--store",
                          str(tmp_path / "missing"), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "store directory does not exist" in bad.stderr


# -- intervals, time zones, numbers -------------------------------------------------------------
@pytest.fixture(scope="module")
def month_store(shared_data, tmp_path_factory) -> CandleStore:
    """BTCUSDT's whole real month (2025-05-04 .. 2025-06-03) of 1m candles."""
    c = load_real("BTCUSDT", str(shared_data))
    return build_store(tmp_path_factory.mktemp("month") / "store", shared_data,
                       symbols=("BTCUSDT",), rows=len(c))


def buckets_by_hand(c: Candles, opens: list[int], ends: list[int]) -> list[tuple]:
    """(open, high, low, close, volume at 3 decimals) of the 1m rows in each [open, end)."""
    out = []
    for a, b in zip(opens, ends):
        i, j = np.searchsorted(c.open_time, [a, b])
        out.append((c.open[i], c.high[i:j].max(), c.low[i:j].min(), c.close[j - 1],
                    round(float(c.volume[i:j].sum()), 3)))
    return out


def values(rows) -> list[tuple]:
    return [tuple(float(x) for x in r[1:6]) for r in rows]


def test_resampled_volumes_are_written_at_the_symbols_decimals(emulator, source_store):
    c = source_store.read("BTCUSDT", "1m")
    raw = resample(c, "1h").volume
    assert np.any(np.round(raw, 3) != raw)  # plain float sums carry noise (230.80800000000002)
    with emulator() as (url, _):
        rows = binance_client(url).get_klines(symbol="BTCUSDT", interval="1h", limit=1000)
    texts = [r[5] for r in rows]
    assert all(len(t.split(".")[1]) == 8 for t in texts)
    assert [float(t) for t in texts] == np.round(raw, 3).tolist()


def test_3d_and_1M_candles_on_their_calendar_grid(emulator, month_store):
    c = month_store.read("BTCUSDT", "1m")
    may, june = 1746057600000, 1748736000000  # 2025-05-01, 2025-06-01 00:00 UTC
    with emulator(store=month_store) as (url, _):
        client = binance_client(url)
        month = client.get_klines(symbol="BTCUSDT", interval=client.KLINE_INTERVAL_1MONTH)
        days3 = client.get_klines(symbol="BTCUSDT", interval=client.KLINE_INTERVAL_3DAY,
                                  limit=1000)
    with emulator(store=month_store, forming_candle="synthetic") as (url, _):
        forming = binance_client(url).get_klines(symbol="BTCUSDT", interval="1M")
    # one closed month (built from the rows present, from May 4), June still forming
    assert [(r[0], r[6]) for r in month] == [(may, june - 1)]
    assert values(month) == buckets_by_hand(c, [may], [june])
    assert [r[0] for r in forming] == [may, june] and forming[1][6] == 1751328000000 - 1
    step = 3 * DAY_MS  # 3d candles repeat every three days from 1970-01-01 (documented)
    first = int(c.open_time[0]) // step * step
    opens = list(range(first, int(c.open_time[-1]) + 1 - step + MINUTE_MS, step))
    opens = [t for t in opens if t + step <= int(c.open_time[-1]) + MINUTE_MS]
    assert [r[0] for r in days3] == opens and all(r[6] == r[0] + step - 1 for r in days3)
    assert values(days3) == buckets_by_hand(c, opens, [t + step for t in opens])


def test_time_zone_moves_the_bucket_boundaries(emulator, month_store):
    c = month_store.read("BTCUSDT", "1m")
    with emulator(store=month_store) as (url, _):
        client = binance_client(url)

        def klines(interval, zone=None, **kw):
            params = {"timeZone": zone} if zone is not None else {}
            return client.get_klines(symbol="BTCUSDT", interval=interval, limit=1000,
                                     **params, **kw)

        utc = klines("1d")
        east = klines("1d", "8")
        east_hm = klines("1d", "+08:00")
        zero = klines("1d", "0")
        quarter = klines("1h", "05:45", startTime=int(c.open_time[600]))
        minutes = klines("1m", "-3:30", startTime=int(c.open_time[0]))
        month_west = klines("1M", "-5:00")
        errors = [api_error(klines, "1d", zone) for zone in ("+14:01", "-12:30", "8:60", "abc")]
        edges = [len(klines("1d", zone)) for zone in ("-12:00", "+14:00")]
    assert zero == utc and all(r[0] % DAY_MS == 0 for r in utc)
    assert east == east_hm and all(r[0] % DAY_MS == 16 * 3_600_000 for r in east)
    opens = [r[0] for r in east]
    assert values(east) == buckets_by_hand(c, opens, [t + DAY_MS for t in opens])
    assert all(r[0] % 3_600_000 == 15 * MINUTE_MS for r in quarter)  # :15 UTC is :00 at +5:45
    assert [r[0] for r in minutes] == c.open_time[:1000].tolist()  # 1m is unmoved
    may_west = 1746057600000 + 5 * 3_600_000  # May 1st 00:00 at -05:00 is 05:00 UTC
    assert [r[0] for r in month_west] == [may_west]
    assert values(month_west) == buckets_by_hand(c, [may_west], [1748736000000 + 5 * 3_600_000])
    assert all((e.status_code, e.code) == (400, -1130) for e in errors)
    assert "timeZone" in errors[0].message and min(edges) > 0


# -- depth, 24hr ticker, the end of the data ------------------------------------------------------
def test_depth_is_a_synthetic_book_around_the_last_close(emulator, source_store):
    c = source_store.read("BTCUSDT", "1m")
    now = int(c.open_time[700]) + 10_000
    with emulator(start_ms=now, half_spread_bps=2.0) as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        book = client.get_order_book(symbol="BTCUSDT", limit=5)
        w5 = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
        deep = client.get_order_book(symbol="BTCUSDT", limit=200)
        w200 = int(client.response.headers["X-MBX-USED-WEIGHT-1M"]) - w5
        default = client.get_order_book(symbol="BTCUSDT")
        top = client.get_orderbook_ticker(symbol="BTCUSDT")
        bad = api_error(client.get_order_book, symbol="BTCUSDT", limit=0)
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert len(bids) == len(asks) == 5 and len(deep["bids"]) == 200
    assert len(default["asks"]) == 100 and (w5, w200) == (5, 25)
    assert book["bids"][0] == [top["bidPrice"], top["bidQty"]]
    assert book["asks"][0] == [top["askPrice"], top["askQty"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert all(a - b == Decimal("0.01") for a, b in zip(bids, bids[1:]))
    assert all(b - a == Decimal("0.01") for a, b in zip(asks, asks[1:]))
    assert bids[0] < Decimal(repr(float(c.close[699]))) < asks[0]
    assert book["lastUpdateId"] == 700 and bad.code == -1130


def test_ticker_24hr_from_the_closed_candles(emulator, source_store):
    btc = source_store.read("BTCUSDT", "1m")
    eth = source_store.read("ETHUSDT", "1m")
    now = int(btc.open_time[2000]) + 10_000  # 2000 closed; 1439 opened in the last 24 h
    with emulator(start_ms=now) as (url, control):
        fresh_weight_window(control)
        client = binance_client(url)
        full = client.get_ticker(symbol="BTCUSDT")
        one_weight = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
        mini = client.get_ticker(symbol="ETHUSDT", type="MINI")
        every = client.get_ticker()
        all_weight = int(client.response.headers["X-MBX-USED-WEIGHT-1M"]) - one_weight - 2
        price = client.get_symbol_ticker(symbol="BTCUSDT")["price"]
        top = client.get_orderbook_ticker(symbol="BTCUSDT")
    i0 = int(np.searchsorted(btc.open_time, now - DAY_MS))
    window = slice(i0, 2000)
    assert 2000 - i0 == 1439
    assert float(full["openPrice"]) == btc.open[i0]
    assert float(full["highPrice"]) == btc.high[window].max()
    assert float(full["lowPrice"]) == btc.low[window].min()
    assert full["lastPrice"] == price and float(price) == btc.close[1999]
    assert float(full["prevClosePrice"]) == btc.close[i0 - 1]
    assert float(full["volume"]) == round(float(btc.volume[window].sum()), 3)
    assert Decimal(full["priceChange"]) == Decimal(full["lastPrice"]) - Decimal(full["openPrice"])
    change = 100 * (btc.close[1999] - btc.open[i0]) / btc.open[i0]
    assert full["priceChangePercent"] == f"{change:.3f}"
    assert (full["bidPrice"], full["askPrice"]) == (top["bidPrice"], top["askPrice"])
    assert full["openTime"] == int(btc.open_time[i0])
    assert full["closeTime"] == int(btc.open_time[1999]) + MINUTE_MS - 1
    assert (full["firstId"], full["lastId"], full["count"]) == (-1, -1, 0)  # no trade counts
    weighted = float(full["weightedAvgPrice"])
    assert btc.low[window].min() <= weighted <= btc.high[window].max()
    j0 = int(np.searchsorted(eth.open_time, now - DAY_MS))
    j1 = int(np.searchsorted(eth.open_time, now - MINUTE_MS, side="right"))
    assert set(mini) == {"symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
                         "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count"}
    assert mini["count"] == int(eth.extras["trades"][j0:j1].sum())
    assert float(mini["quoteVolume"]) == pytest.approx(
        float(eth.extras["quote_volume"][j0:j1].sum()), rel=1e-12)
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert (one_weight, all_weight) == (2, 80)


def test_after_the_data_ends_the_symbol_is_in_break(emulator, source_store):
    from binance import Client

    t = source_store.read("BTCUSDT", "1m").open_time
    with emulator(start_ms=int(t[-1]) + 30_000) as (url, control):  # the last candle forms
        client = Client("demo", "demo", ping=False)
        client.API_URL = url + "/api"
        trading = client.get_symbol_info("BTCUSDT")["status"]
        live_book = client.get_orderbook_ticker(symbol="BTCUSDT")
        control.advance_replay(30_000)  # the last candle has closed: no market any more
        info = client.get_exchange_info()
        listed = client._get("exchangeInfo", data={"symbolStatus": "TRADING"})["symbols"]
        book = client.get_orderbook_ticker(symbol="BTCUSDT")
        depth = client.get_order_book(symbol="BTCUSDT")
        price = client.get_symbol_ticker(symbol="BTCUSDT")["price"]
        refused = api_error(client.order_market_buy, symbol="BTCUSDT", quantity="0.001")
    assert trading == "TRADING" and Decimal(live_book["bidPrice"]) > 0
    statuses = {s["symbol"]: s["status"] for s in info["symbols"]}
    assert statuses["BTCUSDT"] == "BREAK"
    assert "BTCUSDT" not in [s["symbol"] for s in listed]
    assert book == {"symbol": "BTCUSDT", "bidPrice": "0.00000000", "bidQty": "0.00000000",
                    "askPrice": "0.00000000", "askQty": "0.00000000"}
    assert depth["bids"] == [] and depth["asks"] == []
    assert float(price) == source_store.read("BTCUSDT", "1m").close[-1]  # the last trade
    assert refused.code == -2010 and "Market is closed" in refused.message


def test_the_exchange_feed_sees_the_market_close_with_the_data(emulator, source_store):
    from binance_cluster.exchange.broker.feeds import ExchangeFeed

    c = source_store.read("BTCUSDT", "1m")
    t = c.open_time
    with emulator(start_ms=int(t[-1]) + 30_000) as (url, control):
        feed = ExchangeFeed(url, timeout_s=5)
        now = feed.now_ms()
        before = feed.market("BTCUSDT", now)
        control.advance_replay(30_000)
        after = feed.market("BTCUSDT", feed.now_ms())
    assert before is not None and before.price == c.close[-2] and not before.forming
    assert after is None  # as the emulator refuses orders: no price to fill at
