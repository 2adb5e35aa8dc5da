"""The backtest's exchange fee model against the emulator's matching engine on the same candles:
the same trades placed as MARKET orders give the same fill prices, commissions, held
quantities, dust and balances."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from binance_cluster.engine.simulate import EXIT_REASONS, Risk, SymbolRules, risk_array, run_symbol
from binance_cluster.exchange.emulator.config import EmulatorConfig
from binance_cluster.exchange.emulator.http import ApiError
from binance_cluster.exchange.emulator.orders import NewOrder
from binance_cluster.kernels import simulate as kern
from binance_cluster.strategies.registry import compute_signals, get_strategy
from support.emulator import build_store
from support.real_data import first_rows

ROWS = 3000
SLIPPAGE_BPS = 2.0


def dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


@pytest.fixture(scope="module")
def exchange(shared_data, tmp_path_factory):
    """The emulator's state (matching engine and the demo account) over real BTCUSDT candles."""
    from binance_cluster.exchange.emulator.state import EmulatorState

    root = tmp_path_factory.mktemp("accounting") / "store"
    build_store(root, shared_data, symbols=("BTCUSDT",), rows=ROWS)
    state = EmulatorState(EmulatorConfig(store=root, speed=0.0, slippage_bps=SLIPPAGE_BPS))
    return state


@pytest.mark.parametrize("stake", [1.0, 0.37])
def test_backtest_fills_fees_and_holdings_equal_the_emulators(shared_data, exchange, stake):
    state = exchange
    ex = state.exchange
    account = next(iter(ex.accounts.values()))
    start_usdt = account.available("USDT")
    spec = state.spec("BTCUSDT")
    rules = SymbolRules(float(spec.tick_size), float(spec.step_size), float(spec.min_notional))
    candles = first_rows(shared_data, "BTCUSDT", ROWS)
    risk = Risk(initial_cash=float(start_usdt), stake=stake, fee_rate=float(account.taker),
                slippage=SLIPPAGE_BPS / 10_000)
    sig = compute_signals(get_strategy("sma_cross"), candles, {"fast": 5, "slow": 20}, "1m")
    sim = run_symbol(candles, sig, risk, rules)
    tr = sim.trades
    signal_exits = np.flatnonzero(tr["exit_reason"] == EXIT_REASONS.index("signal"))
    assert signal_exits.size > 20
    base_before = account.available("BTC")
    dust = Decimal(0)
    compared = 0
    for k in range(sim.n_trades):
        if EXIT_REASONS[tr["exit_reason"][k]] != "signal":
            break                                  # the end sale is at a close, not an order
        usdt_before = account.available("USDT")
        buy = ex.place(account, NewOrder("BTCUSDT", "BUY", "MARKET",
                                         quantity=dec(tr["quantity"][k])),
                       int(tr["entry_time"][k]))
        fill = buy.fills[0]
        assert fill.price == dec(tr["entry_price"][k])
        assert fill.commission_asset == "BTC"
        held = dec(tr["sold_quantity"][k]) + dec(tr["dust"][k])           # with earlier dust
        assert account.available("BTC") - base_before == held             # what is held
        assert fill.qty - fill.commission == held - dust
        sell = ex.place(account, NewOrder("BTCUSDT", "SELL", "MARKET",
                                          quantity=dec(tr["sold_quantity"][k])),
                        int(tr["exit_time"][k]))
        out = sell.fills[0]
        assert out.price == dec(tr["exit_price"][k]) and out.commission_asset == "USDT"
        dust = dec(tr["dust"][k])
        assert account.available("BTC") - base_before == dust             # the dust is kept
        fees = float(fill.commission) * tr["entry_price"][k] + float(out.commission)
        assert tr["fees"][k] == pytest.approx(fees, rel=0, abs=1e-9)
        assert float(account.available("USDT") - usdt_before) == pytest.approx(tr["pnl"][k],
                                                                               rel=0, abs=1e-8)
        # flat after the exit at the open: the backtest's equity is its cash
        assert float(account.available("USDT")) == pytest.approx(sim.equity[tr["exit_bar"][k]],
                                                                 rel=0, abs=1e-6)
        compared += 1
    assert compared >= signal_exits.size - 1 and dust > 0
    assert sim.dust[0] == tr["dust"][-1] < rules.step_size
    assert any(tr["sold_quantity"] > tr["quantity"] * (1 - risk.fee_rate))   # dust was sold
    # the dust is below one lot: neither can sell it; one lot is under the minimum notional
    risk_params = risk_array(risk, 60_000, max_positions=1)
    lot, tick = rules.step_size, rules.tick_size
    now = int(candles.open_time[-5])
    price = float(candles.open[-5])
    inv = (kern.grid_inverse(lot), kern.grid_inverse(tick))
    for qty in (float(dust) or lot / 3, lot):
        sold, _, _ = kern.sell_fill(qty, price, risk_params, lot, *inv)
        assert kern.sell_refused(sold, price, risk_params, rules.min_notional)
        with pytest.raises(ApiError, match="Filter failure"):
            ex.place(account, NewOrder("BTCUSDT", "SELL", "MARKET", quantity=dec(qty)), now)
