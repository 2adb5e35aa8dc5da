"""`binance-cluster import`: real-data round trip, both Binance layouts, header CSVs, bad input."""

from __future__ import annotations

import gzip
import hashlib
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest

from binance_cluster.candles.importer import name_parts, parse_csv
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import format_time_ms

FLOATS = ("open", "high", "low", "close", "volume")
BINANCE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                  "taker_buy_volume,taker_buy_quote_volume,ignore")


# -- helpers ---------------------------------------------------------------------------------
def real_rows(shared_data: Path, symbol: str) -> list[list[str]]:
    """Data rows of a real file as text fields (header dropped)."""
    text = gzip.decompress((shared_data / f"{symbol}-1m.csv.gz").read_bytes()).decode()
    lines = text.splitlines()
    assert lines[0] == "open_time,open,high,low,close,volume"
    return [line.split(",") for line in lines[1:]]


def oracle(rows: list[list[str]], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns from text rows with Python's int() and float(): the exact reference."""
    out = {}
    for k, name in enumerate(names):
        if name is None:
            continue
        if name in ("open_time", "trades"):
            out[name] = np.array([int(r[k]) for r in rows], dtype=np.int64)
        else:
            out[name] = np.array([float(r[k]) for r in rows], dtype=np.float64)
    return out


def assert_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal values and bit patterns (so -0.0 and 0.0 or 1-ulp differences are caught)."""
    assert got.dtype == want.dtype, what
    assert got.shape == want.shape, what
    bad = np.flatnonzero(got.view(np.int64) != want.view(np.int64))
    if bad.size:
        i = int(bad[0])
        pytest.fail(f"{what}: {bad.size} values differ, first at row {i}: got "
                    f"{got[i].item()!r} want {want[i].item()!r}")


def binance_rows(rows: list[list[str]], micro: bool = False) -> list[list[str]]:
    """12-column Binance kline rows derived from real OHLCV rows (extras computed from them)."""
    out = []
    for r in rows:
        t = int(r[0])
        close, volume = float(r[4]), float(r[5])
        scale = 1000 if micro else 1
        out.append([str(t * scale), *r[1:6], str((t + 59_999) * scale),
                    f"{close * volume:.5f}", str(int(volume * 7) % 9000 + 1),
                    f"{volume * 0.375:.3f}", f"{close * volume * 0.375:.4f}", "0"])
    return out


EXTRA_NAMES = ("open_time", "open", "high", "low", "close", "volume", None, "quote_volume",
               "trades", "taker_buy_base", "taker_buy_quote", None)


def write_csv(path: Path, rows: list[list[str]], header: str | None = None,
              newline: str = "\n") -> Path:
    text = newline.join(([header] if header else []) + [",".join(r) for r in rows]) + newline
    data = text.encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_zip(path: Path, rows: list[list[str]], header: str | None = None,
              inner: str | None = None) -> Path:
    text = "\n".join(([header] if header else []) + [",".join(r) for r in rows]) + "\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(inner or path.name[:-4] + ".csv", text)
    return path


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- the real data ---------------------------------------------------------------------------
def test_real_data_round_trips_exactly(cli, shared_data, store_dir):
    code, out, err = cli("import", "--store", store_dir, shared_data)
    assert code == 0, err
    store = CandleStore(store_dir)
    files = sorted(shared_data.glob("*-1m.csv.gz"))
    assert len(files) == 16
    assert store.symbols() == sorted(f.name.split("-")[0] for f in files)
    assert sum(store.count(s, "1m") for s in store.symbols()) == 708_180
    assert "708,180 rows read, 708,180 added, 0 unchanged" in out
    for f in files:
        symbol = f.name.split("-")[0]
        want = oracle(real_rows(shared_data, symbol), ("open_time",) + FLOATS)
        got = store.read(symbol, "1m")
        assert got.extras == {}
        for name, col in want.items():
            assert_exact(got.column(name), col, f"{symbol} {name}")
    btc = store.read("BTCUSDT", "1m")
    top = int(np.argmax(btc.close))  # the README: BTCUSDT reaches 111,894 on 2025-05-22
    assert int(btc.close[top]) == 111_894
    assert format_time_ms(int(btc.open_time[top])).startswith("2025-05-22")

    before = tree_hashes(store_dir)
    code, out, err = cli("import", "--store", store_dir, *files)
    assert code == 0, err
    assert "708,180 rows read, 0 added, 708,180 unchanged" in out
    assert tree_hashes(store_dir) == before


# -- the parser alone ------------------------------------------------------------------------
def test_parser_equals_python_float_on_random_decimals():
    rng = random.Random(7)
    texts = []
    for _ in range(20_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 24)))
        point = rng.randint(0, len(digits))
        text = digits[:point] + "." + digits[point:] if rng.random() < 0.8 else digits
        if rng.random() < 0.2:
            text += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 330))
        texts.append(("-" if rng.random() < 0.1 else "") + text)
    texts += ["0", "-0.0", "0.1", "1e22", "1e23", "9007199254740993", " 2.5", "1.7976931348623157e308",
              "5e-324", "1e-400", "123456789012345678", "0.30000000000000004", "inf"]
    rows = "\n".join(f"{60_000 * (i + 1)},{t},{t},{t},{t},{t}" for i, t in enumerate(texts))
    columns, lines, _ = parse_csv("x.csv", ("open_time,open,high,low,close,volume\n" + rows).encode())
    want = np.array([float(t) for t in texts])
    for name in FLOATS:
        assert_exact(columns[name], want, name)
    assert_exact(columns["open_time"], 60_000 * np.arange(1, len(texts) + 1, dtype=np.int64), "t")
    assert lines[0] == 2 and lines[-1] == len(texts) + 1


def test_file_names_give_symbol_and_interval():
    assert name_parts("x/BTCUSDT-1m-2024-01.zip") == ("BTCUSDT", "1m")
    assert name_parts("BTCUSDT-1m.csv.gz") == ("BTCUSDT", "1m")
    assert name_parts("ethusdt-15m-2024-01-02.csv") == ("ETHUSDT", "15m")
    assert name_parts("prices.csv") == (None, None)


# -- both Binance layouts and header CSVs ----------------------------------------------------
def test_binance_layouts_ms_and_us_csv_and_zip(cli, shared_data, tmp_path):
    rows = real_rows(shared_data, "BTCUSDT")[:3000]
    want = oracle(binance_rows(rows), EXTRA_NAMES)
    src = tmp_path / "in"
    src.mkdir()
    files = [
        write_csv(src / "BTCUSDT-1m-2025-05.csv", binance_rows(rows[:1000])),
        write_zip(src / "BTCUSDT-1m-2025-05-04.zip", binance_rows(rows[1000:2000], micro=True)),
        # Binance's own header; overlaps the file before by 100 identical rows
        write_zip(src / "BTCUSDT-1m-2025-05-05.zip", binance_rows(rows[1900:3000]), BINANCE_HEADER),
    ]
    store_dir = tmp_path / "a"
    code, out, err = cli("import", "--store", store_dir, *files)
    assert code == 0, err
    assert "3,100 rows read, 3,000 added" in out
    got = CandleStore(store_dir).read("BTCUSDT", "1m")
    assert sorted(got.extras) == ["quote_volume", "taker_buy_base", "taker_buy_quote", "trades"]
    assert got.extras["trades"].dtype == np.int64
    for name, col in want.items():
        assert_exact(got.column(name), col, name)

    # the same rows in microseconds, as one plain CSV and as one zip, give the same store
    for k, path in enumerate([write_csv(src / "us.csv", binance_rows(rows, micro=True)),
                              write_zip(src / "us.zip", binance_rows(rows, micro=True))]):
        other = tmp_path / f"b{k}"
        code, out, err = cli("import", "--store", other, path, "--symbol", "BTCUSDT",
                             "--interval", "1m")
        assert code == 0, err
        again = CandleStore(other).read("BTCUSDT", "1m")
        for name, col in want.items():
            assert_exact(again.column(name), col, f"{path.name} {name}")


def test_header_csv_gz_with_extras_by_name_and_crlf(cli, shared_data, store_dir, tmp_path):
    rows = binance_rows(real_rows(shared_data, "LAYERUSDT")[:2500])
    # columns in another order, an unknown text column that is ignored, CRLF line ends
    order = [0, 4, 1, 2, 3, 5, 8, 7, 9, 10]
    header = "open_time,close,open,high,low,volume,trades,quote_volume,taker_buy_base,taker_buy_quote,note"
    shuffled = [[r[i] for i in order] + ["n/a"] for r in rows]
    path = write_csv(tmp_path / "LAYERUSDT-1m.csv.gz", shuffled, header, newline="\r\n")
    code, out, err = cli("import", "--store", store_dir, path)
    assert code == 0, err
    got = CandleStore(store_dir).read("LAYERUSDT", "1m")
    for name, col in oracle(rows, EXTRA_NAMES).items():
        assert_exact(got.column(name), col, name)
    assert got.open[0] > 3.0 and got.low.min() < 3.0


def test_headerless_six_columns_and_explicit_symbol(cli, shared_data, store_dir, tmp_path):
    rows = real_rows(shared_data, "SUIUSDT")[:700]
    path = write_csv(tmp_path / "prices.csv", rows)
    code, out, err = cli("import", "--store", store_dir, path)
    assert code == 2 and "prices.csv" in err and "--symbol" in err
    code, out, err = cli("import", "--store", store_dir, path, "--symbol", "SUIUSDT",
                         "--interval", "1m")
    assert code == 0, err
    got = CandleStore(store_dir).read("SUIUSDT", "1m")
    for name, col in oracle(rows, ("open_time",) + FLOATS).items():
        assert_exact(got.column(name), col, name)


def test_import_under_mpirun_two_ranks(mpirun, shared_data, store_dir, tmp_path):
    path = write_csv(tmp_path / "XRPUSDT-1m.csv", real_rows(shared_data, "XRPUSDT")[:500],
                     "open_time,open,high,low,close,volume")
    proc = mpirun(2, "-m", "binance_cluster", "import", "--store", store_dir, path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("500 rows read, 500 added") == 1
    assert CandleStore(store_dir).count("XRPUSDT", "1m") == 500


# -- bad input leaves the store as it was ----------------------------------------------------
HEADER = "open_time,open,high,low,close,volume"


@pytest.fixture
def base_store(cli, shared_data, tmp_path) -> Path:
    """A store already holding 2000 BTCUSDT and 2000 ETHUSDT candles."""
    store_dir = tmp_path / "store"
    src = tmp_path / "base"
    src.mkdir()
    files = [write_csv(src / f"{s}-1m.csv", real_rows(shared_data, s)[:2000], HEADER)
             for s in ("BTCUSDT", "ETHUSDT")]
    code, _, err = cli("import", "--store", store_dir, *files)
    assert code == 0, err
    return store_dir


def _bad_cases(rows: list[list[str]], sol: list[list[str]], d: Path):
    """name -> a function writing the case's files, returning (args, substrings of the error)."""
    new = [list(r) for r in rows[2000:2100]]  # rows after those stored

    def edited(k: int, col: int, value: str) -> list[list[str]]:
        out = [list(r) for r in new]
        out[k][col] = value
        return out

    good_sol = write_csv(d / "SOLUSDT-1m.csv", sol, HEADER)
    short = binance_rows(new)
    short[14] = short[14][:5]
    cases = {
        "short row": lambda: ([write_csv(d / "BTCUSDT-1m-2025-05.csv", short)],
                      ["BTCUSDT-1m-2025-05.csv", "line 15", "5 fields, expected 12"]),
        "too many fields": lambda: ([write_csv(d / "BTCUSDT-1m.csv", [*new[:3], new[3] + ["1"], *new[4:]],
                                       HEADER)], ["BTCUSDT-1m.csv", "line 5", "too many fields"]),
        "non-numeric": lambda: ([write_csv(d / "BTCUSDT-1m.csv", edited(7, 2, "abc"), HEADER)],
                        ["BTCUSDT-1m.csv", "line 9", "high", "'abc' is not a number"]),
        "nan": lambda: ([write_csv(d / "BTCUSDT-1m.csv", edited(4, 4, "NaN"), HEADER)],
                ["BTCUSDT-1m.csv", "line 6", "close is not a finite number"]),
        "negative price": lambda: ([write_csv(d / "BTCUSDT-1m.csv", edited(30, 3, "-3.5"), HEADER)],
                           ["BTCUSDT-1m.csv", "line 32", "low -3.5 is not above zero"]),
        "high below low": lambda: ([write_csv(d / "BTCUSDT-1m.csv", edited(16, 2, str(float(new[16][3]) - 1)),
                                      HEADER)],
                           ["BTCUSDT-1m.csv", "line 18", f"high {float(new[16][3]) - 1!r} is below "
                                                         f"low {float(new[16][3])!r}"]),
        "out of order": lambda: ([write_csv(d / "BTCUSDT-1m.csv",
                                    [*new[:10], new[11], new[10], *new[12:]], HEADER)],
                         ["BTCUSDT-1m.csv", "line 13", "out of order"]),
        "duplicate in file": lambda: ([write_csv(d / "BTCUSDT-1m.csv",
                                         [*new[:21], [*new[20][:5], str(float(new[20][5]) + 1)], *new[21:]],
                                         HEADER)],
                              ["BTCUSDT-1m.csv", "line 23", "duplicate"]),
        "conflict with store": lambda: ([good_sol, write_csv(
            d / "BTCUSDT-1m.csv", [r if k != 100 else [*r[:5], str(float(r[5]) + 1)]
                                   for k, r in enumerate(rows[1500:2500])], HEADER)],
            ["BTCUSDT-1m.csv", "line 102", "already stored", "volume"]),
        "gap filled before stored end": lambda: ([write_csv(d / "BTCUSDT-1m.csv",
                                                    [[str(int(rows[0][0]) - 60_000), *rows[0][1:]]],
                                                    HEADER)],
                                         ["BTCUSDT-1m.csv", "line 2", "only appends"]),
        "conflict between files": lambda: ([
            write_csv(d / "BTCUSDT-1m-2025-05-05.csv", new[:60], HEADER),
            write_csv(d / "BTCUSDT-1m-2025-05-06.csv",
                      [*new[50:55], [*new[55][:5], str(float(new[55][5]) * 2)], *new[56:]], HEADER)],
            ["BTCUSDT-1m-2025-05-06.csv", "line 7", "duplicate"]),
        "microseconds not whole ms": lambda: ([write_csv(
            d / "BTCUSDT-1m.csv", [r if k != 3 else [str(int(r[0]) + 7), *r[1:]]
                                   for k, r in enumerate(binance_rows(new, micro=True))])],
            ["BTCUSDT-1m.csv", "line 4", "not a whole millisecond"]),
        "zip without csv": lambda: ([_zip_without_csv(d / "BTCUSDT-1m-2025-05.zip")],
                            ["BTCUSDT-1m-2025-05.zip", "no CSV file", "notes.txt"]),
        "not a zip": lambda: ([_bytes(d / "BTCUSDT-1m-2025-05.zip", b"hello")],
                      ["BTCUSDT-1m-2025-05.zip", "not a valid zip"]),
        "unknown interval option": lambda: ([good_sol, "--interval", "7m"], ["--interval", "'7m'"]),
        "unknown interval name": lambda: ([good_sol, write_csv(d / "BTCUSDT-7m.csv", new, HEADER)],
                                  ["BTCUSDT-7m.csv", "unknown interval '7m'"]),
        "missing file": lambda: ([good_sol, d / "BTCUSDT-1m-2030-01.zip"],
                         ["BTCUSDT-1m-2030-01.zip", "no such file"]),
        "empty file": lambda: ([good_sol, _bytes(d / "BTCUSDT-1m.csv", b"")], ["BTCUSDT-1m.csv", "empty file"]),
        "header only": lambda: ([_bytes(d / "BTCUSDT-1m.csv.gz", gzip.compress(HEADER.encode() + b"\n"))],
                        ["BTCUSDT-1m.csv.gz", "no candle rows"]),
        "bad header": lambda: ([_bytes(d / "BTCUSDT-1m.csv", b"time,open,high,low,close\n1,2,3,4,5\n")],
                       ["BTCUSDT-1m.csv", "line 1", "lacks column(s) open_time, volume"]),
    }
    return cases


def _zip_without_csv(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "no candles here\n")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASE_NAMES = ["short row", "too many fields", "non-numeric", "nan", "negative price",
              "high below low", "out of order", "duplicate in file", "conflict with store",
              "gap filled before stored end", "conflict between files",
              "microseconds not whole ms", "zip without csv", "not a zip",
              "unknown interval option", "unknown interval name", "missing file", "empty file",
              "header only", "bad header"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_exits_2_and_leaves_the_store_unchanged(case, cli, shared_data, base_store,
                                                          tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    cases = _bad_cases(real_rows(shared_data, "BTCUSDT"), real_rows(shared_data, "SOLUSDT")[:300], d)
    assert sorted(cases) == sorted(CASE_NAMES)
    args, expected = cases[case]()
    before = tree_hashes(base_store)
    code, out, err = cli("import", "--store", base_store, *args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("binance-cluster: error: "), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert tree_hashes(base_store) == before
    assert not (base_store / "SOLUSDT.h5").exists()


def test_store_file_that_is_not_hdf5(cli, shared_data, base_store, tmp_path):
    (base_store / "BTCUSDT.h5").write_text("this is not HDF5\n")
    before = tree_hashes(base_store)
    path = write_csv(tmp_path / "BTCUSDT-1m.csv", real_rows(shared_data, "BTCUSDT")[2000:2100], HEADER)
    sol = write_csv(tmp_path / "SOLUSDT-1m.csv", real_rows(shared_data, "SOLUSDT")[:100], HEADER)
    code, out, err = cli("import", "--store", base_store, sol, path)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "BTCUSDT.h5" in lines[0] and "not an HDF5" in lines[0], err
    assert tree_hashes(base_store) == before


def test_appending_new_rows_and_reimporting(cli, shared_data, base_store, tmp_path):
    rows = real_rows(shared_data, "BTCUSDT")
    path = write_csv(tmp_path / "BTCUSDT-1m.csv", rows[1000:3000], HEADER)
    code, out, err = cli("import", "--store", base_store, path)
    assert code == 0, err
    assert "2,000 rows read, 1,000 added, 1,000 unchanged" in out
    got = CandleStore(base_store).read("BTCUSDT", "1m")
    for name, col in oracle(rows[:3000], ("open_time",) + FLOATS).items():
        assert_exact(got.column(name), col, name)
    before = tree_hashes(base_store)
    code, out, err = cli("import", "--store", base_store, path)
    assert code == 0 and "0 added, 2,000 unchanged" in out, err
    assert tree_hashes(base_store) == before
