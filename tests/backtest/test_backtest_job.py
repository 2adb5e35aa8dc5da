"""Job files: resolution of defaults and grids, the TOML round trip, and every kind of bad input
(exit code 2, one line naming the key, nothing created) through the real command line."""

from __future__ import annotations

import dataclasses
import math

import pytest

from support.backtest_store import build_store
from binance_cluster.backtest.job import dump_job, load_job
from binance_cluster.errors import ConfigError


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("config") / "store"
    build_store(shared_data, root, symbols=("BTCUSDT", "ETHUSDT"))
    return root


GOOD = """\
store = "{store}"
symbols = ["BTCUSDT", "ETHUSDT"]
start = "2025-05-06"
end = 2025-05-08T12:30:00Z
output = "{out}"
top = 3
rank_by = "total_return"
chunk_size = 5

[strategy]
name = "sma_cross"
[strategy.params]
fast = {{start = 5, stop = 20, step = 5}}
slow = [30, 60, 90]

[risk]
fee_rate = 0.00075
stop_loss = 0.05

[rules]
tick_size = 0.01
step_size = 0.0001
[rules.BTCUSDT]
tick_size = 0.1
"""


def good(tmp_path, store, **replace) -> str:
    text = GOOD.format(store=store, out=tmp_path / "out")
    for old, new in replace.items():
        assert old in text or old == "prepend", old
        text = new + "\n" + text if old == "prepend" else text.replace(old, new)
    return text


def write(tmp_path, text: str):
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_resolves_defaults_grids_and_overrides(tmp_path, store):
    from binance_cluster.engine.simulate import Risk, SymbolRules
    from binance_cluster.strategies.registry import get_strategy

    job = load_job(write(tmp_path, good(tmp_path, store)))
    assert job.symbols == ("BTCUSDT", "ETHUSDT")
    assert job.interval == "1m" and job.mode == "sweep" and job.top == 3
    assert job.start == 1_746_489_600_000 and job.end == 1_746_707_400_000
    spec_names = [p.name for p in get_strategy("sma_cross").params]
    assert [name for name, _ in job.params] == spec_names
    params = dict(job.params)
    assert params["fast"] == (5, 10, 15, 20) and params["slow"] == (30, 60, 90)
    assert all(isinstance(v, int) for v in params["fast"])
    assert job.n_combinations == 12 * math.prod(len(v) for k, v in job.params if k not in ("fast", "slow"))
    grid = job.grid()
    assert len(grid) == job.n_combinations and grid[0]["fast"] == 5 and grid[0]["slow"] == 30
    assert grid[1]["slow"] == 60 and grid[-1]["fast"] == 20 and grid[-1]["slow"] == 90
    assert job.risk == Risk(fee_rate=0.00075, stop_loss=0.05)
    assert job.rules == SymbolRules(tick_size=0.01, step_size=0.0001)
    assert job.rules_for("BTCUSDT") == SymbolRules(tick_size=0.1, step_size=0.0001)
    assert job.rules_for("ETHUSDT") == job.rules
    assert job.output == str(tmp_path / "out")


def test_symbols_all_and_defaults(tmp_path, store):
    text = f'store = "{store}"\n[strategy]\nname = "sma_cross"\n'
    job = load_job(write(tmp_path, text))
    assert job.symbols == ("BTCUSDT", "ETHUSDT")
    assert job.start is None and job.end is None and job.top == 5 and job.rank_by == "sharpe"
    assert job.n_combinations == 1
    assert job.output.endswith("results/job")


def test_resolved_job_round_trips(tmp_path, store):
    job = load_job(write(tmp_path, good(tmp_path, store, **{
        'end = 2025-05-08T12:30:00Z': 'end = 1746707400123'})))
    text = dump_job(job)
    again_path = tmp_path / "again.toml"
    again_path.write_text(text)
    again = load_job(again_path)
    assert again == job
    assert again.end == 1_746_707_400_123
    assert dump_job(again).splitlines()[2:] == text.splitlines()[2:]


def test_float_range_is_inclusive_and_exact():
    from binance_cluster.backtest.job import _grid_values
    from binance_cluster.jobfile import Where as _Where
    from binance_cluster.strategies.registry import ParamSpec

    spec = ParamSpec(name="k", default=0.5, low=0.0, high=1.0, integer=False, help="")
    values = _grid_values({"start": 0.1, "stop": 0.3, "step": 0.1}, spec, "strategy.params.k",
                          _Where("x.toml"))
    assert values == (0.1, 0.2, 0.3)
    ints = ParamSpec(name="n", default=5, low=1, high=100, integer=True, help="")
    assert _grid_values({"start": 5, "stop": 50, "step": 5}, ints, "k", _Where("x")) == \
        tuple(range(5, 51, 5))
    with pytest.raises(ConfigError, match=r"x: k: 0.5 is not an integer"):
        _grid_values([0.5], ints, "k", _Where("x"))


# Each bad input: (replacements of the good job, a key or text the one-line error must name).
BAD = {
    "unknown top-level key": ({"prepend": 'colour = "red"\n'}, "colour"),
    "unknown key in risk": ({"[risk]\n": "[risk]\nfees = 0.1\n"}, "risk.fees: unknown key"),
    "unknown key in a range": ({"step = 5}": "step = 5, by = 2}"}, "strategy.params.fast.by"),
    "unknown key in rules": ({"[rules]\n": "[rules]\nlot = 1\n"}, "rules.lot: unknown key"),
    "unknown strategy": ({'name = "sma_cross"': 'name = "moon_shot"'}, "strategy.name"),
    "unknown parameter": ({"slow = [30, 60, 90]": "slow = [30]\nspeed = 3"},
                          "strategy.params.speed: unknown key"),
    "parameter above maximum": ({"slow = [30, 60, 90]": "slow = [30, 100000000]"},
                                "strategy.params.slow: 100000000 is above the maximum"),
    "parameter below minimum": ({"slow = [30, 60, 90]": "slow = -4"},
                                "strategy.params.slow: -4 is below the minimum"),
    "empty list grid": ({"slow = [30, 60, 90]": "slow = []"}, "strategy.params.slow: the grid is empty"),
    "empty range grid": ({"start = 5, stop = 20": "start = 20, stop = 5"},
                         "strategy.params.fast: the grid is empty"),
    "parameter of a wrong type": ({"slow = [30, 60, 90]": 'slow = "fast"'}, "strategy.params.slow"),
    "symbol not in the store": ({'"ETHUSDT"]': '"DOGEUSDT"]'},
                                "symbols: DOGEUSDT is not in the store"),
    "time range without candles": ({'start = "2025-05-06"': 'start = "2024-01-01"',
                                    "end = 2025-05-08T12:30:00Z": 'end = "2024-02-01"'},
                                   "start: BTCUSDT has no candles"),
    "end before start": ({"end = 2025-05-08T12:30:00Z": 'end = "2025-05-01"'}, "end:"),
    "unreadable time": ({'start = "2025-05-06"': 'start = "last tuesday"'}, "start: cannot read"),
    "negative fee": ({"fee_rate = 0.00075": "fee_rate = -0.001"}, "risk.fee_rate: -0.001"),
    "negative stake": ({"[risk]\n": "[risk]\nstake = -1\n"}, "risk.stake: -1"),
    "unknown stake mode": ({"[risk]\n": '[risk]\nstake_mode = "all"\n'}, "risk.stake_mode"),
    "negative tick size": ({"tick_size = 0.1": "tick_size = -0.1"}, "rules.BTCUSDT.tick_size"),
    "rules for a symbol not in the store": ({"[rules.BTCUSDT]": "[rules.XRPUSDT]"},
                                            "rules.XRPUSDT: XRPUSDT is not in the store"),
    "unknown interval": ({"prepend": 'interval = "7m"'}, "interval: unknown interval"),
    "interval the strategy cannot use": ({'name = "sma_cross"': 'name = "momentum_burst"',
                                          "fast = {start = 5, stop = 20, step = 5}": "",
                                          "slow = [30, 60, 90]": "",
                                          "prepend": 'interval = "4h"'},
                                         "interval: strategy momentum_burst needs an interval"),
    "unknown mode": ({"prepend": 'mode = "live"'}, "mode: unknown mode"),
    "unknown rank_by": ({'rank_by = "total_return"': 'rank_by = "luck"'}, "rank_by: unknown metric"),
    "grid in portfolio mode": ({"prepend": 'mode = "portfolio"'}, "portfolio mode takes one value"),
    "store missing": ({'store = "': 'store = "/nonexistent'}, "store:"),
    "TOML syntax error": ({"top = 3": "top = = 3"}, "TOML syntax error"),
    "unknown fee model": ({"[risk]\n": '[risk]\nfee_model = "binance"\n'},
                          "risk.fee_model: unknown fee model 'binance'"),
    "BNB fees in the quote model": ({"[risk]\n": '[risk]\nfee_model = "quote"\nbnb_fees = true\n'},
                                    "risk.bnb_fees"),
    # 10 USDT x (1 - 0.075 %) = 9.9925 reaches the market, under a minimum notional of 10
    "stake under the minimum notional after the commission": (
        {"[risk]\n": '[risk]\nstake = 10\nstake_mode = "quote"\n',
         "[rules]\n": "[rules]\nmin_notional = 10\n"},
        "risk.stake: 10 leaves 9.9925 after the commission, under the minimum notional 10 of "
        "BTCUSDT"),
    # the store starts on 2025-05-05: 90 bars before 00:30 that day are not there
    "warm-up longer than the stored history": (
        {'start = "2025-05-06"': 'start = 2025-05-05T00:30:00Z'},
        "start: BTCUSDT: the warm-up needs 90 1m bars before 2025-05-05 00:30, the store has 30"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_naming_the_key_and_creates_nothing(case, tmp_path, store, cli):
    replace, expected = BAD[case]
    path = write(tmp_path, good(tmp_path, store, **replace))
    code, out, err = cli("backtest", path, "--no-progress")
    assert code == 2, (case, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"binance-cluster: error: {path}:"), lines[0]
    assert expected in lines[0], (expected, lines[0])
    assert not (tmp_path / "out").exists()


def test_syntax_error_names_the_line(tmp_path, store, cli):
    path = write(tmp_path, good(tmp_path, store, **{"top = 3": "top = = 3"}))
    code, _, err = cli("backtest", path)
    assert code == 2 and "line 6" in err, err


def test_missing_job_file(tmp_path, cli):
    code, _, err = cli("backtest", tmp_path / "nope.toml")
    assert code == 2
    assert err.strip() == f"binance-cluster: error: {tmp_path / 'nope.toml'}: job file not found"


def test_command_line_overrides(tmp_path, store):
    from binance_cluster.backtest.job import Overrides

    path = write(tmp_path, good(tmp_path, store))
    job = load_job(path, Overrides(output=str(tmp_path / "elsewhere"), symbols=("ETHUSDT",), top=1,
                                   rank_by="sharpe"))
    assert job.symbols == ("ETHUSDT",) and job.top == 1 and job.rank_by == "sharpe"
    assert job.output == str(tmp_path / "elsewhere")
    # the override table of a stored symbol the job does not trade is dropped
    assert job.symbol_rules == () and job.rules_for("BTCUSDT") == job.rules
    assert dataclasses.replace(job, source="x") == job
