"""The HDF5 candle store: round trips, append rules, validation, crash safety."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from binance_cluster.errors import DataError, NotAStoreFileError, StoreError, UnknownSymbolError
from binance_cluster.candles.store import CHUNK_ROWS, AppendResult, CandleStore, CandleValidationError, validate_candles
from binance_cluster.types import Candles

from support.synthetic import make_candles

M = 60_000


def tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".locks" not in p.parts}


def assert_same(a: Candles, b: Candles) -> None:
    for name, col in a.columns().items():
        np.testing.assert_array_equal(col, b.column(name), err_msg=name)


def test_round_trip_and_ranges(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(20_000, extras=True)
    assert store.append("BTCUSDT", "1m", c) == AppendResult(20_000, 0)
    assert store.symbols() == ["BTCUSDT"]
    assert store.intervals("BTCUSDT") == ["1m"]
    assert store.count("BTCUSDT", "1m") == 20_000
    assert store.span("BTCUSDT", "1m") == (0, 19_999 * M)
    assert_same(store.read("BTCUSDT", "1m"), c)
    part = store.read("BTCUSDT", "1m", start=100 * M, end=250 * M)
    assert_same(part, c.slice(100, 250))
    # start between candles, end past the last, empty ranges
    assert_same(store.read("BTCUSDT", "1m", start=100 * M + 1), c.slice(101, 20_000))
    assert len(store.read("BTCUSDT", "1m", start=10**15)) == 0
    assert len(store.read("BTCUSDT", "1m", start=5 * M, end=5 * M)) == 0
    assert store.read("BTCUSDT", "1m", end=3 * M).extras["trades"].dtype == np.int64


def test_real_data_round_trips_exactly(store_dir, shared_data):
    store = CandleStore(store_dir)
    path = shared_data / "BTCUSDT-1m.csv.gz"
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f]
    cols = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    data = {"open_time": np.array([int(v) for v in cols["open_time"]], dtype=np.int64)}
    for name in ("open", "high", "low", "close", "volume"):
        data[name] = np.array([float(v) for v in cols[name]])
    candles = Candles.from_columns(data)
    store.append("BTCUSDT", "1m", candles)
    back = store.read("BTCUSDT", "1m")
    assert len(back) == len(rows) > 40_000
    assert_same(back, candles)
    assert 111_894 <= float(back.close.max()) < 111_895  # the data README: BTC reaches 111,894


def test_identical_reappend_is_noop_and_extends(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(1000)
    store.append("ETHUSDT", "1m", c.slice(0, 600))
    before = tree_hash(store_dir)
    mtime = store.path("ETHUSDT").stat().st_mtime_ns
    assert store.append("ETHUSDT", "1m", c.slice(100, 600)) == AppendResult(0, 500)
    assert tree_hash(store_dir) == before
    assert store.path("ETHUSDT").stat().st_mtime_ns == mtime  # not even opened for writing
    assert store.append("ETHUSDT", "1m", c.slice(300, 1000)) == AppendResult(400, 300)
    assert_same(store.read("ETHUSDT", "1m"), c)


def test_conflicting_reappend_is_an_error_and_changes_nothing(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(1000)
    store.append("ETHUSDT", "1m", c)
    before = tree_hash(store_dir)
    changed = c.columns()
    changed["close"] = changed["close"].copy()
    changed["close"][500] += 0.01
    changed["high"] = np.maximum(changed["high"], changed["close"])
    bad = Candles.from_columns(changed)
    with pytest.raises(DataError, match="already stored .* close="):
        store.append("ETHUSDT", "1m", bad.slice(400, 1000))
    # a row before the last one where the store has none cannot be inserted
    gap = make_candles(1, start=2000)
    store.append("ETHUSDT", "1m", gap)
    before = tree_hash(store_dir)
    with pytest.raises(DataError, match="where the store has no candle"):
        store.append("ETHUSDT", "1m", make_candles(1, start=1500))
    assert tree_hash(store_dir) == before


@pytest.mark.parametrize("column,row,value,message", [
    ("open", 3, float("nan"), "open is not a finite number"),
    ("close", 3, -1.0, "close -1.0 is not above zero"),
    ("volume", 2, -5.0, "volume -5.0 is negative"),
    ("high", 4, 1.0, "high 1.0 is below"),
    ("low", 4, "high", "low .* is above min\\(open, close\\)"),
    ("open_time", 5, 3 * M, "out of order"),
    ("open_time", 5, 4 * M, "duplicate"),
    ("open_time", 5, 5 * M + 1, "not on the 1m grid"),
])
def test_validation_names_row_and_problem(store_dir, column, row, value, message):
    cols = make_candles(10).columns()
    cols[column] = cols[column].copy()
    cols[column][row] = cols[value][row] if isinstance(value, str) else value
    bad = Candles.from_columns(cols)
    with pytest.raises(CandleValidationError, match=message) as info:
        validate_candles(bad, "1m")
    assert info.value.row == row
    store = CandleStore(store_dir)
    with pytest.raises(DataError):
        store.append("BTCUSDT", "1m", bad)
    assert store.symbols() == []


def test_growth_rewrite_keeps_every_interval_and_attrs(store_dir):
    store = CandleStore(store_dir)
    hourly = make_candles(50)
    hourly = Candles.from_columns({**hourly.columns(), "open_time": hourly.open_time * 60})
    store.append("BNBUSDT", "1h", hourly, synthetic=True)
    c = make_candles(3 * CHUNK_ROWS)
    with store.writer("BNBUSDT") as w:
        for i in range(0, len(c), 997):  # many appends, several rewrites
            w.append("1m", c.slice(i, i + 997))
    assert_same(store.read("BNBUSDT", "1m"), c)
    assert_same(store.read("BNBUSDT", "1h"), hourly)
    assert store.attrs("BNBUSDT")["synthetic"] is True or store.attrs("BNBUSDT")["synthetic"] == 1
    assert store.intervals("BNBUSDT") == ["1m", "1h"]


def test_extras_kept_filled_or_dropped(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(100, extras=True)
    store.append("SOLUSDT", "1m", c.slice(0, 50))
    plain = Candles.from_columns({k: v for k, v in c.columns().items()
                                  if k in ("open_time", "open", "high", "low", "close", "volume")})
    store.append("SOLUSDT", "1m", plain.slice(50, 100))
    back = store.read("SOLUSDT", "1m")
    assert np.isnan(back.extras["quote_volume"][50:]).all()
    assert (back.extras["trades"][50:] == -1).all()
    np.testing.assert_array_equal(back.extras["trades"][:50], c.extras["trades"][:50])


def test_gaps_are_reported(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(300)
    keep = np.ones(300, bool)
    keep[100:103] = False
    keep[200:260] = False
    store.append("XRPUSDT", "1m", Candles.from_columns({k: v[keep] for k, v in c.columns().items()}))
    gaps = store.gaps("XRPUSDT", "1m")
    assert gaps.tolist() == [[99 * M, 103 * M], [199 * M, 260 * M]]
    (info,) = store.describe("XRPUSDT")
    assert (info.gaps, info.largest_gap_ms, info.rows) == (2, 60 * M, 237)


def test_not_a_store_file(store_dir):
    (store_dir / "BTCUSDT.h5").write_text("not hdf5 at all\n")
    store = CandleStore(store_dir)
    with pytest.raises(NotAStoreFileError, match="BTCUSDT.h5: not an HDF5 candle store file"):
        store.read("BTCUSDT", "1m")
    with pytest.raises(NotAStoreFileError):
        store.append("BTCUSDT", "1m", make_candles(5))
    assert (store_dir / "BTCUSDT.h5").read_text() == "not hdf5 at all\n"
    with h5py.File(store_dir / "ETHUSDT.h5", "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(NotAStoreFileError, match="not a binance-cluster candle store"):
        store.count("ETHUSDT", "1m")


def test_unknown_symbol_and_interval(store_dir):
    store = CandleStore(store_dir)
    store.append("BTCUSDT", "1m", make_candles(5))
    with pytest.raises(UnknownSymbolError, match="DOGEUSDT is not in the store"):
        store.read("DOGEUSDT", "1m")
    with pytest.raises(UnknownSymbolError, match="has no 5m candles"):
        store.read("BTCUSDT", "5m")
    with pytest.raises(Exception, match="unknown interval '7m'"):
        store.read("BTCUSDT", "7m")


def test_one_writer_many_readers(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(200)
    store.append("BTCUSDT", "1m", c.slice(0, 100))
    with store.writer("BTCUSDT") as w:
        with pytest.raises(StoreError, match="another process is writing"):
            with store.writer("BTCUSDT"):
                pass
        w.append("1m", c.slice(100, 150))
        assert store.count("BTCUSDT", "1m") == 150  # a reader sees committed rows at once
    assert_same(store.read("BTCUSDT", "1m"), c.slice(0, 150))


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from support.synthetic import make_candles
    from binance_cluster.candles.store import CandleStore
    store = CandleStore(sys.argv[1])
    full = make_candles(int(sys.argv[2]), seed=7)
    n = store.count("BTCUSDT", "1m") if store.symbols() else 0
    print("ready", flush=True)
    with store.writer("BTCUSDT") as w:
        i = n
        while i < len(full):
            step = 1 + (i * 7919) % 700
            w.append("1m", full.slice(i, i + step))
            i += step
            print(min(i, len(full)), flush=True)
""")


def test_sigkill_mid_append_loses_nothing_committed(tmp_path):
    """Kill a writer at random moments many times; every committed candle survives intact."""
    total = 6 * CHUNK_ROWS
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parents[1])))
    store_dir = tmp_path / "store"
    expected = make_candles(total, seed=7)
    rng = random.Random(12345)
    kills = 0
    committed = 0
    # Each writer is killed at a random moment shortly after it reports a random row target
    # (about 1/12 of the way further): kill points fall inside appends and growth rewrites
    # however fast or busy the machine is, and the writer always gets past every chunk.
    while kills < 100:
        proc = subprocess.Popen([sys.executable, str(script), str(store_dir), str(total)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        target = committed + rng.uniform(0, total / 12)
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if int(line) >= target:
                break
        time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        out = "".join(seen).split() + proc.stdout.read().split()
        proc.wait()
        kills += 1
        if out:
            committed = max(committed, int(out[-1]))
        store = CandleStore(store_dir)
        if store.symbols():
            n = store.count("BTCUSDT", "1m")
            assert n >= committed, "a committed candle was lost"
            assert_same(store.read("BTCUSDT", "1m"), expected.slice(0, n))
            validate_candles(store.read("BTCUSDT", "1m"), "1m")
            committed = n
        if committed >= total:
            break
    assert kills >= 10
    assert committed > CHUNK_ROWS, "the writer never got far enough to test growth"


def test_reserve_avoids_repeated_rewrites(store_dir):
    store = CandleStore(store_dir)
    c = make_candles(40_000)
    inodes = set()
    with store.writer("ADAUSDT") as w:
        w.reserve("1m", len(c))
        for i in range(0, len(c), 1000):
            w.append("1m", c.slice(i, i + 1000))
            inodes.add(store.path("ADAUSDT").stat().st_ino)
    assert len(inodes) == 1  # created once with room for all, never rewritten
    assert_same(store.read("ADAUSDT", "1m"), c)


def test_writers_kept_open_hold_little_memory(shared_data, tmp_path):
    """The live loop keeps one writer a symbol for the run: each holds under 1.5 MB once it has
    appended (HDF5's default chunk cache made it ~2.1 MB: every column's chunk kept), and
    `close_file` lets the file go but keeps the lock."""
    from support.real_data import first_rows

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    real = first_rows(shared_data, "BTCUSDT", 1500)
    cols = real.columns()
    cols["quote_volume"], cols["trades"] = real.close * real.volume, np.arange(1500, dtype=np.int64)
    real = Candles.from_columns(cols)
    store = CandleStore(tmp_path / "store")
    names = [f"S{k:03d}USDT" for k in range(40)]
    for s in names:
        store.append(s, "1m", real.slice(0, 1400))
    writers = [store.writer(s).__enter__() for s in names]
    before = rss_mb()
    for i in range(1400, 1403):
        for w in writers:
            w.append("1m", real.slice(i, i + 1))
    grown = rss_mb() - before
    assert store.count(names[-1], "1m") == 1403
    assert grown < 1.5 * len(names), f"{grown / len(names):.2f} MB a writer"
    # closing the files keeps the locks; the next append opens the file again
    for w in writers:
        w.close_file()
    with pytest.raises(StoreError, match="another process is writing"):
        store.writer(names[0]).__enter__()
    writers[0].append("1m", real.slice(1403, 1405))
    assert store.count(names[0], "1m") == 1405
    for w in writers:
        w.close()
