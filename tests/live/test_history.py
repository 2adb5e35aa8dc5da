"""The live loop's in-memory history (`live.history.RecentCandles`) equals what the store reads
back, bar by bar, through single appends, a catch-up of several bars, a gap in the data, a
restart, and fetched candles whose extras differ from the file's."""

from __future__ import annotations

import numpy as np

from binance_cluster.candles.store import CandleStore
from binance_cluster.live.history import RecentCandles
from binance_cluster.types import Candles
from support.real_data import first_rows

MIN = 60_000
WINDOW = 30


def with_extras(c: Candles) -> Candles:
    """`c` with quote volume and trade counts (the real files carry none)."""
    cols = c.columns()
    cols["quote_volume"] = c.close * c.volume
    cols["trades"] = np.arange(len(c), dtype=np.int64) + 7
    return Candles.from_columns(cols)


def assert_same(a: Candles, b: Candles) -> None:
    assert list(a.columns()) == list(b.columns())
    for name, col in a.columns().items():
        assert col.dtype == b.column(name).dtype, name
        assert np.array_equal(col, b.column(name), equal_nan=col.dtype.kind == "f"), name


def test_window_equals_the_store_read_bar_by_bar(shared_data, tmp_path):
    real = with_extras(first_rows(shared_data, "BTCUSDT", 400))
    store = CandleStore(tmp_path / "store")
    store.append("BTCUSDT", "1m", real.slice(0, 200))
    # the bars as the loop sees them: one candle a bar, then four at once (a catch-up), then
    # three candles the exchange never had (a gap), then candles without the extras
    steps = [(i, i + 1) for i in range(200, 220)] + [(220, 224)] + \
            [(i, i + 1) for i in range(227, 240)]
    core = Candles.from_columns({k: v for k, v in real.columns().items()
                                 if k not in ("quote_volume", "trades")})
    checked = 0
    recent = RecentCandles(store, "1m")
    with store.writer("BTCUSDT") as w:
        for k, (i0, i1) in enumerate(steps):
            if k == len(steps) // 2:
                # a restart: the new process reads its window from the store again
                recent = RecentCandles(store, "1m")
            fetched = (core if i0 >= 230 else real).slice(i0, i1)
            w.append("1m", fetched)
            recent.appended("BTCUSDT", fetched)
            bar = int(real.open_time[i1 - 1])
            first = bar - (WINDOW - 1) * MIN
            got = recent.window("BTCUSDT", first, bar + MIN)
            assert_same(got, store.read("BTCUSDT", "1m", first, bar + MIN))
            assert int(got.open_time[-1]) == bar
            checked += 1
    assert checked == len(steps)
    # rows of the gap are missing from both, the extras the fetch lacked are filled alike
    assert np.diff(real.open_time[200:240]).max() == MIN
    assert len(got) == WINDOW - 3 and not np.isin(real.open_time[224:227], got.open_time).any()
    assert (got.column("trades")[-5:] == -1).all() and np.isnan(got.column("quote_volume")[-5:]).all()


def test_an_earlier_window_and_a_file_without_the_extras(shared_data, tmp_path):
    real = first_rows(shared_data, "ETHUSDT", 120)
    store = CandleStore(tmp_path / "store")
    store.append("ETHUSDT", "1m", real.slice(0, 100))
    recent = RecentCandles(store, "1m")
    end = int(real.open_time[99]) + MIN
    assert_same(recent.window("ETHUSDT", end - 20 * MIN, end),
                store.read("ETHUSDT", "1m", end - 20 * MIN, end))
    # fetched candles carrying extras the file does not store: the store drops them, so does memory
    fetched = with_extras(real.slice(100, 110))
    store.append("ETHUSDT", "1m", fetched)
    recent.appended("ETHUSDT", fetched)
    end = int(real.open_time[109]) + MIN
    got = recent.window("ETHUSDT", end - 20 * MIN, end)
    assert got.extras == {}
    assert_same(got, store.read("ETHUSDT", "1m", end - 20 * MIN, end))
    # a window reaching back before what is held is read from the store again
    assert_same(recent.window("ETHUSDT", end - 60 * MIN, end),
                store.read("ETHUSDT", "1m", end - 60 * MIN, end))
    # a window ending before the newest candle leaves it out
    assert_same(recent.window("ETHUSDT", end - 60 * MIN, end - 5 * MIN),
                store.read("ETHUSDT", "1m", end - 60 * MIN, end - 5 * MIN))
