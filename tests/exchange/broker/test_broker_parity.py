"""Property: the paper broker and the exchange emulator run one order engine, so random order
sequences (MARKET, LIMIT, stop limits and take-profit limits both ways, SELL OCO lists,
cancels, clock steps) give identical answers, open orders, balances and fills on the same
real candles; the emulator is reached with the real python-binance client over HTTP."""

from __future__ import annotations

import random

import pytest

from binance_cluster.exchange.broker.feeds import CandleFeed
from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig
from support.broker import fill_key, trading  # noqa: F401
from support.emulator import source_store  # noqa: F401
from support.order_sequences import Advance, Submit, apply, order_key, random_script

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BALANCES = {"USDT": "30000", "BTC": "0.2", "ETH": "6", "SOL": "120"}
STEPS = 150


def amounts(balances: dict) -> dict:
    """(free, locked) by asset, assets holding nothing left out."""
    return {a: (b.free, b.locked) for a, b in balances.items() if b.free or b.locked}


@pytest.mark.parametrize("seed, resting_from, slippage_bps",
                         [(1, "placement", 5), (2, "next", 0), (3, "placement", 0),
                          (4, "next", 12), (5, "placement", 2), (6, "next", 5),
                          (7, "placement", 30), (8, "next", 1)])
def test_random_order_sequences_trade_alike_on_paper_and_on_the_emulator(
        trading, source_store, seed, resting_from, slippage_bps):
    with trading(balances=BALANCES, maker="0.0008", taker="0.001",
                 slippage_bps=slippage_bps, resting_from=resting_from, weight_limit=0,
                 order_limit_10s=0) as venue:
        live = venue.broker()
        candles = {s: source_store.read(s, "1m") for s in SYMBOLS}
        feed = CandleFeed(candles, {s: live.filters(s) for s in SYMBOLS},
                          now_ms=venue.start_ms)
        paper = PaperBroker(feed, BALANCES, PaperConfig(
            maker_fee=0.0008, taker_fee=0.001, slippage=slippage_bps / 10_000,
            resting_from=resting_from))

        def price_at(symbol: str, now: int) -> float | None:
            quote = feed.market(symbol, now)
            return None if quote is None else quote.price

        steps = random_script(random.Random(seed), SYMBOLS, price_at, venue.start_ms, STEPS,
                              tag=f"s{seed}x")
        now = venue.start_ms
        outcomes: list[tuple] = []
        for n, step in enumerate(steps):
            if isinstance(step, Advance):
                now += step.ms
                venue.control.advance_replay(step.ms)
                feed.set_now(now)
            else:
                got = [apply(b, step) for b in (live, paper)]
                assert got[0] == got[1], f"step {n}: {step}"
                outcomes.append(got[0])
            views = [[order_key(o) for o in b.open_orders()] for b in (live, paper)]
            assert views[0] == views[1], f"step {n}: open orders after {step}"
            assert amounts(live.balances()) == amounts(paper.balances()), f"step {n}: {step}"
        for symbol in SYMBOLS:
            fills = [[fill_key(f) for f in b.fills_since(symbol)] for b in (live, paper)]
            assert fills[0] == fills[1], symbol
        for step in steps:
            if isinstance(step, Submit):
                r = step.request
                found = [apply_query(b, r.symbol, r.client_id) for b in (live, paper)]
                assert found[0] == found[1], r.client_id
    # the sequence really traded: fills of both kinds, rejections, orders left resting
    kinds = {o[0] if o[0] == "error" else o[1][4] for o in outcomes}
    assert {"FILLED", "NEW", "EXPIRED", "CANCELED", "error"} <= kinds, kinds
    assert sum(len(paper.fills_since(s)) for s in SYMBOLS) >= 10


def apply_query(broker, symbol: str, client_id: str) -> tuple:
    try:
        return ("order", order_key(broker.query(symbol, client_id)))
    except Exception as exc:  # noqa: BLE001 - the kind of refusal is what is compared
        return ("error", type(exc).__name__, getattr(exc, "code", None))
