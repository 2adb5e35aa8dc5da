"""Resampling: the kernels against a plain-Python reference on real candles, closed-bucket
rules, prefix invariance, the causal index helper, and the `resample` command (serial and
under mpirun)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math

import numpy as np
import pytest

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.candles.resample import last_closed, plan_resample, resample
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import (COLUMNS, DAY_MS, MINUTE_MS, Candles, interval_ms,
                                   interval_origin_ms)

HOUR_MS = 60 * MINUTE_MS
INTERVALS = ("3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w")


def load_csv(path) -> Candles:
    """Read a `open_time,open,high,low,close,volume` csv.gz with the standard library."""
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == list(COLUMNS)
        rows = [row for row in reader]
    return Candles.from_columns({
        "open_time": np.array([int(r[0]) for r in rows], dtype=np.int64),
        **{name: np.array([float(r[i + 1]) for r in rows]) for i, name in enumerate(COLUMNS[1:])}})


@pytest.fixture(scope="module")
def real(shared_data) -> dict[str, Candles]:
    return {s: load_csv(shared_data / f"{s}-1m.csv.gz")
            for s in ("BTCUSDT", "LAYERUSDT", "ETHUSDT")}


def with_extras(c: Candles, seed: int) -> Candles:
    """Add Binance extras derived from the candles, with a few unknown trade counts and NaNs."""
    rng = np.random.default_rng(seed)
    cols = c.columns()
    n = len(c)
    cols["quote_volume"] = c.volume * c.close
    cols["trades"] = (c.volume * 7).astype(np.int64) + 1
    cols["taker_buy_base"] = np.round(c.volume * 0.5, 3)
    cols["taker_buy_quote"] = cols["taker_buy_base"] * c.close
    cols["trades"][rng.choice(n, 5, replace=False)] = -1
    cols["quote_volume"][rng.choice(n, 5, replace=False)] = np.nan
    return Candles.from_columns(cols)


def with_gaps(c: Candles, seed: int) -> Candles:
    """Drop scattered minutes, a few stretches (one across a day boundary) and a whole day."""
    rng = np.random.default_rng(seed)
    n = len(c)
    keep = np.ones(n, bool)
    keep[rng.choice(n, n // 50, replace=False)] = False
    for start in rng.choice(n - 400, 6, replace=False):
        keep[start:start + rng.integers(2, 300)] = False
    t = c.open_time
    day = (t[n // 2] // DAY_MS) * DAY_MS
    keep[(t >= day) & (t < day + DAY_MS)] = False
    keep[(t >= day + 5 * DAY_MS - 17 * MINUTE_MS) & (t < day + 5 * DAY_MS + 23 * MINUTE_MS)] = False
    return Candles.from_columns({k: v[keep] for k, v in c.columns().items()})


def reference(c: Candles, interval: str, source_ms: int = MINUTE_MS,
              closed_until: int | None = None) -> dict[str, list]:
    """Plain-Python resampling: group rows by bucket, keep the buckets closed by the horizon."""
    step = interval_ms(interval)
    origin = interval_origin_ms(interval)
    cols = {k: v.tolist() for k, v in c.columns().items()}
    buckets: dict[int, list[int]] = {}
    for i, t in enumerate(cols["open_time"]):
        buckets.setdefault(origin + math.floor((t - origin) / step) * step, []).append(i)
    horizon = cols["open_time"][-1] + source_ms if cols["open_time"] else None
    if closed_until is not None:
        horizon = closed_until if horizon is None else max(horizon, closed_until)
    out: dict[str, list] = {k: [] for k in cols}
    for start, rows in buckets.items():
        if start + step > horizon:
            continue
        out["open_time"].append(start)
        out["open"].append(cols["open"][rows[0]])
        out["high"].append(max(cols["high"][i] for i in rows))
        out["low"].append(min(cols["low"][i] for i in rows))
        out["close"].append(cols["close"][rows[-1]])
        for name in ("volume", "quote_volume", "taker_buy_base", "taker_buy_quote"):
            if name in cols:
                total = 0.0
                for i in rows:
                    total += cols[name][i]
                out[name].append(total)
        if "trades" in cols:
            counts = [cols["trades"][i] for i in rows]
            out["trades"].append(-1 if min(counts) < 0 else sum(counts))
    return out


def assert_equal_candles(got: Candles, want) -> None:
    want_cols = want.columns() if isinstance(want, Candles) else want
    got_cols = got.columns()
    assert sorted(got_cols) == sorted(want_cols)
    for name, values in want_cols.items():
        expected = np.asarray(values, dtype=got_cols[name].dtype)
        assert got_cols[name].shape == expected.shape, name
        np.testing.assert_array_equal(got_cols[name], expected, err_msg=name)


def closed_prefix(full: Candles, interval: str, horizon: int) -> Candles:
    """Rows of `full` whose candle ends at or before `horizon`."""
    k = int(np.searchsorted(full.open_time + interval_ms(interval), horizon, side="right"))
    return full.slice(0, k)


@pytest.mark.parametrize("interval", INTERVALS)
def test_matches_reference_on_real_data_with_gaps_and_extras(real, interval):
    for seed, symbol in enumerate(("BTCUSDT", "LAYERUSDT")):
        c = with_gaps(with_extras(real[symbol], seed), seed)
        c = c.slice(0, len(c) - 37)  # end in the middle of most buckets
        got = resample(c, interval)
        want = reference(c, interval)
        assert len(got) == len(want["open_time"]) > 0
        assert_equal_candles(got, want)
        assert np.all((got.open_time - interval_origin_ms(interval)) % interval_ms(interval) == 0)
        assert np.isnan(got.extras["quote_volume"]).sum() >= 1  # NaN propagated, not skipped
        assert (got.extras["trades"] == -1).sum() >= 1


def test_from_higher_source_interval_matches_two_steps(real):
    c = with_gaps(real["ETHUSDT"], 3)
    hourly = resample(c, "1h")
    daily_direct = resample(c, "1d")
    daily_from_hours = resample(hourly, "1d", source_interval="1h")
    want = reference(hourly, "1d", source_ms=HOUR_MS)
    assert_equal_candles(daily_from_hours, want)
    np.testing.assert_array_equal(daily_from_hours.open_time, daily_direct.open_time)
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(daily_from_hours.column(name), daily_direct.column(name))
    np.testing.assert_allclose(daily_from_hours.volume, daily_direct.volume, rtol=1e-12)


def test_trailing_partial_bucket_is_not_emitted_until_closed(real):
    c = real["BTCUSDT"]
    t = c.open_time
    hour = (t[5000] // HOUR_MS) * HOUR_MS  # a whole hour well inside the data
    upto = int(np.searchsorted(t, hour + 30 * MINUTE_MS))  # rows before hh:30
    part = c.slice(0, upto)
    got = resample(part, "1h")
    assert got.open_time[-1] == hour - HOUR_MS  # the half hour is held back
    assert_equal_candles(got, reference(part, "1h"))
    # the caller knows data is complete up to the hour's end (an outage): now it is closed
    closed = resample(part, "1h", closed_until=hour + HOUR_MS)
    assert closed.open_time[-1] == hour
    assert closed.close[-1] == part.close[-1] and closed.open[-1] == part.open[upto - 30]
    assert_equal_candles(closed, reference(part, "1h", closed_until=hour + HOUR_MS))
    assert len(resample(part, "1h", closed_until=hour + HOUR_MS - 1)) == len(got)
    assert len(resample(part, "1h", closed_until="2020-01-01")) == len(got)  # never less
    # the last minute present closes the bucket without help
    full_hour = c.slice(0, int(np.searchsorted(t, hour + HOUR_MS)))
    assert resample(full_hour, "1h").open_time[-1] == hour
    # the last minute present but earlier minutes missing: still closed, built from the rest
    holed = Candles.from_columns({k: np.delete(v, np.s_[upto - 30:upto + 29])
                                  for k, v in full_hour.columns().items()})
    last = resample(holed, "1h")
    assert last.open_time[-1] == hour
    assert last.open[-1] == full_hour.open[-1] and last.close[-1] == full_hour.close[-1]


def test_gaps_inside_between_and_across_buckets(real):
    c = real["ETHUSDT"]
    t = c.open_time
    hour = (t[3000] // HOUR_MS) * HOUR_MS
    # last 10 minutes of one hour missing, the whole next hour missing
    drop = (t >= hour + 50 * MINUTE_MS) & (t < hour + 2 * HOUR_MS)
    g = Candles.from_columns({k: v[~drop] for k, v in c.columns().items()})
    got = resample(g, "1h")
    i = int(np.searchsorted(got.open_time, hour))
    assert got.open_time[i] == hour and got.open_time[i + 1] == hour + 2 * HOUR_MS
    rows = (t >= hour) & (t < hour + 50 * MINUTE_MS)
    assert got.close[i] == c.close[rows][-1]
    assert got.high[i] == c.high[rows].max() and got.low[i] == c.low[rows].min()
    assert got.volume[i] == pytest.approx(c.volume[rows].sum(), rel=1e-12)


def test_weekly_candles_open_on_monday(real):
    c = real["ETHUSDT"]  # 2025-05-04 (a Sunday) to mid June
    weeks = resample(c, "1w")
    stamps = [dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc) for t in weeks.open_time]
    assert all(s.weekday() == 0 and (s.hour, s.minute) == (0, 0) for s in stamps)
    assert stamps[0] == dt.datetime(2025, 4, 28, tzinfo=dt.timezone.utc)
    assert weeks.open[0] == c.open[0]  # the first, partial week starts at the first minute
    for k, start in enumerate(weeks.open_time):
        rows = (c.open_time >= start) & (c.open_time < start + 7 * DAY_MS)
        assert weeks.close[k] == c.close[rows][-1]
        assert weeks.high[k] == c.high[rows].max()
    # the data ends inside a week: that week is not a closed candle
    assert weeks.open_time[-1] + 7 * DAY_MS <= c.open_time[-1] + MINUTE_MS


@pytest.mark.parametrize("interval", ("5m", "1h", "4h", "1d"))
def test_prefix_invariance(real, interval):
    c = with_gaps(with_extras(real["LAYERUSDT"], 9), 9)
    full = resample(c, interval)
    rng = np.random.default_rng(1)
    step = interval_ms(interval)
    ends = np.flatnonzero((c.open_time + MINUTE_MS) % step == 0)[:40]  # last minutes of buckets
    ks = sorted(set(rng.integers(1, len(c), 80).tolist() + (ends + 1).tolist() + ends.tolist()
                    + [1, 2, len(c)]))
    for k in ks:
        prefix = c.slice(0, k)
        horizon = int(c.open_time[k - 1]) + MINUTE_MS
        assert_equal_candles(resample(prefix, interval), closed_prefix(full, interval, horizon))
        if k < len(c):  # live: the clock says every minute before the next row is known
            now = int(c.open_time[k])
            assert_equal_candles(resample(prefix, interval, closed_until=now),
                                 closed_prefix(full, interval, now))


def test_last_closed_is_causal_and_matches_prefix_resampling(real):
    c = with_gaps(real["BTCUSDT"], 4)
    for interval in ("15m", "1h", "1d"):
        higher = resample(c, interval)
        idx = last_closed(c, higher, interval)
        ends = higher.open_time + interval_ms(interval)
        closes = c.open_time + MINUTE_MS
        brute = np.searchsorted(ends, closes, side="right") - 1
        np.testing.assert_array_equal(idx, brute)
        seen = idx >= 0
        assert np.all(ends[idx[seen]] <= closes[seen])  # only candles closed by the bar's close
        nxt = idx + 1 < len(higher)
        assert np.all(ends[idx[nxt] + 1] > closes[nxt])  # and the latest such
        assert idx[0] == -1 and np.all(np.diff(idx) >= 0)
        for i in np.random.default_rng(2).integers(0, len(c), 60):
            assert len(resample(c.slice(0, i + 1), interval)) == idx[i] + 1
    # at hh:59 the hour just closed is visible; at hh:58 it is not
    t = c.open_time
    higher = resample(c, "1h")
    idx = last_closed(c, higher, "1h")
    i59 = int(np.flatnonzero(t % HOUR_MS == 59 * MINUTE_MS)[10])
    assert higher.open_time[idx[i59]] == t[i59] - 59 * MINUTE_MS
    if t[i59 - 1] == t[i59] - MINUTE_MS:
        assert idx[i59 - 1] == idx[i59] - 1


def test_empty_and_single_rows():
    empty = Candles.from_columns({k: np.zeros(0) for k in COLUMNS})
    assert len(resample(empty, "1h")) == 0
    assert len(last_closed(empty, empty, "1h")) == 0
    one = Candles.from_columns({"open_time": np.array([HOUR_MS - MINUTE_MS]), "open": [1.0],
                                "high": [2.0], "low": [0.5], "close": [1.5], "volume": [3.0]})
    got = resample(one, "1h")  # the hour's last minute alone closes it
    assert got.open_time.tolist() == [0] and got.volume.tolist() == [3.0]
    assert len(resample(one, "2h")) == 0


def test_bad_input_raises_one_clear_line(real):
    c = real["BTCUSDT"].slice(0, 100)
    cases = [
        (ConfigError, dict(interval="7m"), "target interval: unknown interval '7m'"),
        (ConfigError, dict(interval="1h", source_interval="2m"), "source interval: unknown"),
        (ConfigError, dict(interval="5m", source_interval="3m"),
         "5m is not a whole multiple of 3m"),
        (ConfigError, dict(interval="1m"), "must be longer than the source"),
        (ConfigError, dict(interval="1h", closed_until="yesterday"), "closed_until: cannot read"),
    ]
    for error, kwargs, text in cases:
        with pytest.raises(error) as info:
            resample(c, **kwargs)
        assert text in str(info.value) and "\n" not in str(info.value)
    cols = c.columns()
    cols["open_time"] = cols["open_time"].copy()
    cols["open_time"][7] += 1000
    with pytest.raises(DataError, match=r"^row 7: open_time \d+ is not on the 1m grid"):
        resample(Candles.from_columns(cols), "1h")
    cols["open_time"][7] = cols["open_time"][5]
    with pytest.raises(DataError, match="row 7: .* strictly increasing"):
        resample(Candles.from_columns(cols), "1h")
    with pytest.raises(DataError, match="row 0: open_time 1746372780000 is not on the 1h grid"):
        resample(c, "1d", source_interval="1h")  # 1m candles passed as 1h
    assert plan_resample("1w", "1d").origin_ms == 4 * DAY_MS


# -- the resample command ----------------------------------------------------------------------

def fill_store(root, real, rows: int | None = None) -> CandleStore:
    store = CandleStore(root)
    for symbol in ("BTCUSDT", "LAYERUSDT", "ETHUSDT"):
        c = with_gaps(real[symbol], 11)
        store.append(symbol, "1m", c if rows is None else c.slice(0, rows))
    return store


def file_state(store: CandleStore) -> dict:
    # Contents only: a no-op append opens the file read-write, which touches its mtime.
    return {s: store.path(s).read_bytes() for s in store.symbols()}


def test_resample_command_writes_closed_candles_and_reruns_as_no_op(real, store_dir, cli):
    store = fill_store(store_dir, real, rows=20_000 + 31)
    code, out, err = cli("resample", "--store", store_dir, "--to", "1h")
    assert code == 0, err
    for symbol in store.symbols():
        got = store.read(symbol, "1h")
        assert_equal_candles(got, resample(store.read(symbol, "1m"), "1h"))
        assert got.open_time[-1] + HOUR_MS <= store.span(symbol, "1m")[1] + MINUTE_MS
    assert "3 symbols:" in out and "0 already stored" in out
    before = file_state(store)
    code, out, err = cli("resample", "--store", store_dir, "--to", "1h")
    assert code == 0, err
    assert "3 symbols: 0 1h candles added (3 already stored)" in out
    assert file_state(store) == before  # not one byte rewritten
    # more 1m candles arrive: only the newly closed hours are added, equal to a full resample
    counts = {s: store.count(s, "1h") for s in store.symbols()}
    for symbol in store.symbols():
        store.append(symbol, "1m", with_gaps(real[symbol], 11))
    code, out, err = cli("resample", "--store", store_dir, "--to", "1h", "--symbols",
                         "BTCUSDT,ETHUSDT")
    assert code == 0, err
    for symbol in ("BTCUSDT", "ETHUSDT"):
        full = resample(store.read(symbol, "1m"), "1h")
        assert_equal_candles(store.read(symbol, "1h"), full)
        assert len(full) > counts[symbol]
    assert store.count("LAYERUSDT", "1h") == counts["LAYERUSDT"]  # not asked for
    code, out, err = cli("resample", "--store", store_dir, "--to", "1d", "--from", "1h",
                         "--symbols", "ETHUSDT")
    assert code == 0, err
    assert_equal_candles(store.read("ETHUSDT", "1d"),
                         resample(store.read("ETHUSDT", "1h"), "1d", source_interval="1h"))
    assert store.intervals("ETHUSDT") == ["1m", "1h", "1d"]


def test_resample_command_bad_input(real, store_dir, cli):
    store = fill_store(store_dir, real, rows=3000)
    before = file_state(store)
    cases = [
        (("--to", "7m"), "unknown interval '7m'"),
        (("--to", "1h", "--from", "5m", "--symbols", "BTCUSDT"), "BTCUSDT has no 5m candles"),
        (("--to", "1h", "--from", "5m"), "no symbol holds 5m candles"),
        (("--to", "5m", "--from", "3m"), "5m is not a whole multiple of 3m"),
        (("--to", "1h", "--symbols", "DOGEUSDT"), "symbol DOGEUSDT is not in the store"),
        (("--to", "1h", "--symbols", "btc"), "invalid symbol name 'btc'"),
        (("--to", "1h", "--from", "1h"), "target interval must be longer"),
    ]
    for args, text in cases:
        code, out, err = cli("resample", "--store", store_dir, *args)
        assert code == 2, (args, err)
        assert text in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli("resample", "--store", store_dir / "nope", "--to", "1h")
    assert code == 2 and "store directory does not exist" in err
    assert file_state(store) == before


def test_resample_command_conflicting_target_fails_without_damage(real, store_dir, cli):
    store = fill_store(store_dir, real, rows=5000)
    hours = resample(store.read("BTCUSDT", "1m"), "1h")
    cols = hours.columns()
    cols["volume"] = cols["volume"] * 2  # not derived from the stored minutes
    store.append("BTCUSDT", "1h", Candles.from_columns(cols).slice(0, 20))
    before = file_state(store)
    code, out, err = cli("resample", "--store", store_dir, "--to", "1h", "--symbols", "BTCUSDT")
    assert code == 1
    assert "BTCUSDT" in err and "conflicting duplicate" in err
    assert file_state(store) == before


@pytest.mark.mpi
def test_resample_command_under_mpirun(real, store_dir, mpirun):
    store = fill_store(store_dir, real)
    proc = mpirun(2, "-m", "binance_cluster", "resample", "--store", store_dir, "--to", "15m")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines() if line.endswith(tuple("0123456789"))
             and line.split()[0] in store.symbols()]
    assert sorted(row[0] for row in lines) == store.symbols()
    assert {row[1] for row in lines} == {"0", "1"}  # both ranks resampled symbols
    for symbol in store.symbols():
        assert_equal_candles(store.read(symbol, "15m"), resample(store.read(symbol, "1m"), "15m"))
    proc = mpirun(2, "-m", "binance_cluster", "resample", "--store", store_dir, "--to", "15m")
    assert proc.returncode == 0, proc.stderr
    assert "0 15m candles added (3 already stored)" in proc.stdout


@pytest.mark.parametrize("interval,block_days", [("5m", 1), ("1h", 3), ("1d", 2), ("1w", 1)])
def test_block_streaming_equals_whole_series(real, store_dir, interval, block_days):
    """Reading in blocks (bounded memory) gives exactly the candles of one whole resample."""
    from binance_cluster.candles.resample import resample_blocks

    store = CandleStore(store_dir)
    c = with_gaps(real["BTCUSDT"], seed=3)
    store.append("BTCUSDT", "1m", c)
    blocks = list(resample_blocks(store, "BTCUSDT", interval, block_days=block_days))
    assert len(blocks) > 3
    assert sum(rows for rows, _ in blocks) == len(c)
    parts = [b for _, b in blocks]
    joined = Candles.from_columns({k: np.concatenate([p.column(k) for p in parts])
                                   for k in parts[0].columns()})
    assert_equal_candles(joined, resample(c, interval))
    later = int(joined.open_time[len(joined) // 2])
    tail = [b for _, b in resample_blocks(store, "BTCUSDT", interval, start=later)]
    assert int(tail[0].open_time[0]) == later
