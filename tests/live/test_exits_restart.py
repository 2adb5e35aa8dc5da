"""The start-up pass of live/exits against the emulator over HTTP: after a restart every open
position has its protective order back, an order whose position is gone is cancelled, and a
second pass changes nothing."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from binance_cluster.engine.simulate import EXIT_REASONS, Risk, SymbolRules, run_symbol
from binance_cluster.strategies.registry import Signals
from binance_cluster.exchange.broker.base import OrderRequest
from binance_cluster.exchange.broker.ids import client_order_id
from binance_cluster.live import exits as ex
from binance_cluster.live.journal import Journal
from binance_cluster.live.reconcile import reconcile
from binance_cluster.types import MINUTE_MS

JOB = "exits-restart"
RISK = Risk(stop_loss=0.01, take_profit=0.02, trailing_stop=0.015)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def buy(journal: Journal, broker, symbol: str, bar_ms: int, quote: str):
    request = OrderRequest(symbol, "BUY", "MARKET", client_order_id(JOB, symbol, bar_ms, "entry"),
                           quote_amount=Decimal(quote))
    journal.record_intent(request, "entry", bar_ms)
    order = broker.submit(request)
    journal.record_answer(order)
    return order


def test_restart_puts_protection_back_and_cancels_orphans(trading, tmp_path):
    with trading(balances={"USDT": "10000", "SOL": "5"}) as venue:
        broker = venue.broker()
        t0 = venue.start_ms
        path = tmp_path / "journal.sqlite"
        with Journal(path, job=JOB) as journal:
            for s in SYMBOLS:
                f = broker.filters(s)
                journal.record_symbol(s, f.base_asset, f.quote_asset)
            buy(journal, broker, "BTCUSDT", t0, "1000")           # then the bot died
            eth = buy(journal, broker, "ETHUSDT", t0, "1000")
            held_eth = broker.balances()["ETH"].total
            h_eth = ex.holding("ETHUSDT", float(eth.fills[0].price), held_eth,
                               float(eth.fills[0].price))
            ex.carry_out(ex.after_entry(JOB, h_eth, t0, RISK, broker.filters("ETHUSDT")),
                         broker, journal)
            # a protective order for coins no position of the job holds (left by a mistake)
            sol = broker.filters("SOLUSDT")
            c = venue.store.read("SOLUSDT", "1m")
            now = float(c.open[int(np.searchsorted(c.open_time, t0))])
            orphan = ex.holding("SOLUSDT", now, Decimal("5"), now)
            ex.carry_out(ex.after_entry(JOB, orphan, t0, RISK, sol), broker, journal)
        eth_list = client_order_id(JOB, "ETHUSDT", t0, ex.PROTECT)
        orphan_list = client_order_id(JOB, "SOLUSDT", t0, ex.PROTECT)
        assert {o.client_id for o in broker.open_orders("SOLUSDT")} == {orphan_list + "-tp",
                                                                       orphan_list + "-sl"}
        venue.control.set_replay(t0 + 5 * MINUTE_MS)
        later = t0 + 5 * MINUTE_MS

        restarted = venue.broker()
        with Journal(path, job=JOB) as journal:
            reconcile(journal, restarted, SYMBOLS)
            holdings = ex.journal_holdings(journal, restarted.filters)
            assert [h.symbol for h in holdings] == ["BTCUSDT", "ETHUSDT"]
            resting = ex.resting_exits(journal, restarted, SYMBOLS)
            assert {s: [r.client_id for r in rs] for s, rs in resting.items()} == {
                "ETHUSDT": [eth_list], "SOLUSDT": [orphan_list]}
            actions = ex.restore(JOB, holdings, resting, later, RISK, restarted.filters)
            ex.carry_out(actions, restarted, journal)
            btc = next(h for h in holdings if h.symbol == "BTCUSDT")
            lv = ex.levels(btc.entry_price, btc.peak, RISK, restarted.filters("BTCUSDT"))
            btc_list = client_order_id(JOB, "BTCUSDT", later, ex.PROTECT)
            placed = restarted.query("BTCUSDT", btc_list)
            assert placed.is_open and placed.quantity == restarted.filters("BTCUSDT").floor_qty(
                btc.account)
            assert (placed.legs[0].price, placed.legs[1].stop_price) == (
                Decimal(repr(lv.target)), Decimal(repr(lv.stop)))
            assert restarted.query("ETHUSDT", eth_list).is_open          # left as it was
            assert restarted.query("SOLUSDT", orphan_list).status == "CANCELED"
            assert restarted.balances()["SOL"].free == Decimal("5")      # unlocked
            # a second pass finds everything in place
            again = ex.restore(JOB, ex.journal_holdings(journal, restarted.filters),
                               ex.resting_exits(journal, restarted, SYMBOLS), later + MINUTE_MS,
                               RISK, restarted.filters)
            assert again == ()
            # switched to bot-managed exits: nothing may rest on the exchange
            bot = ex.restore(JOB, ex.journal_holdings(journal, restarted.filters),
                             ex.resting_exits(journal, restarted, SYMBOLS), later + MINUTE_MS,
                             RISK, restarted.filters, mode="bot")
            ex.carry_out(bot, restarted, journal)
        assert restarted.open_orders() == []


def test_bot_mode_restart_checks_the_missed_bars_first(source_store):
    """Bot-managed exits at a restart: the bars missed while down are walked as the backtest
    walks them, and the first one reaching a level decides a market sell."""
    from binance_cluster.engine.symbol_rules import SymbolFilters

    c = source_store.read("SOLUSDT", "1m")
    filters = SymbolFilters("SOLUSDT", "SOL", "USDT", tick_size=Decimal("0.01"),
                            step_size=Decimal("0.001"))
    entry = float(c.open[100])
    risk = Risk(stop_loss=0.002, take_profit=0.003, trailing_stop=0.0025)
    h = ex.holding("SOLUSDT", entry, Decimal("2"), entry)
    found = ex.first_crossing(h, c.open[100:], c.high[100:], c.low[100:], risk, filters)
    assert found is not None
    k, reason, price = found
    # the same bar, reason and price as the backtest entering at the open of bar 100
    entry_signal = np.zeros(len(c), bool)
    entry_signal[99] = True
    sig = Signals(entry_signal, np.zeros(len(c), bool), np.zeros(len(c)))
    sim = run_symbol(c, sig, risk, SymbolRules(0.01, 0.001, 0.0), bar_ms=MINUTE_MS)
    assert sim.trades["entry_price"][0] == entry
    assert (int(sim.trades["exit_bar"][0]), EXIT_REASONS[sim.trades["exit_reason"][0]],
            float(sim.trades["exit_price"][0])) == (100 + k, reason, price)
    # and a bot restarted before that bar finds nothing yet
    assert ex.first_crossing(h, c.open[100:100 + k], c.high[100:100 + k], c.low[100:100 + k],
                             risk, filters) is None
