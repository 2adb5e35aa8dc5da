"""The decision state of a live portfolio, rebuilt after every bar from what really happened.

`engine.step.DecisionState` is filled from the journal's fills and the broker's balances,
never from simulated fills:

- cash: the account's quote balance (free plus locked);
- positions: a symbol whose newest journaled fill is a BUY holds the position that order
  opened: its quantity, average fill price, quote paid, held quantity (less a commission
  taken in the base asset) and that commission valued at the fill price; its entry bar is the
  bar in which it filled;
- dust: what the account holds of a symbol's base asset beyond the open position (the
  unsellable rest of earlier exits);
- last closes and, for trailing stops, each position's highest high since entry: from the
  candles (the ranks compute them over their store files);
- no orders are pending: those decided at the last close were sent and filled (or refused).

A bar is decided on the account as it was at the bar's close: fills made after it (the
orders of a decision sent before a crash, when the bar is handled again after the restart)
are taken back (`split_at_close`, `before_fills`), so the same decision comes out and its
orders are found by their client ids instead of being sized again; the daily-loss rule counts
the same fills (each real fill once, `live.loop.LiveLoop._day_pnl`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import AbstractSet as Set, Mapping, Sequence

from binance_cluster.engine.step import DecisionState, Position, hour_stats_of
from binance_cluster.exchange.broker.base import Balance, Fill

HOUR_MS = 3_600_000
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Holding:
    """An open long position (Decimal, from the exchange's numbers), the one type the decision
    state and the exits share.

    From its entry order's fills (`open_holding`): when it filled, the average fill price,
    the quantity bought, what is held of it (less a commission taken in the base asset), the
    quote paid and that commission. The exits (`live.exits`) read the entry price, `account`
    (what the account holds of the coin for it: the position plus dust of earlier exits, what
    an exit sells) and `peak` (the trailing stop's: the entry fill, then the highs of its
    closed bars); a holding made for them from a price alone (`live.exits.holding`) leaves
    the fills' fields at zero."""

    symbol: str
    price: Decimal                # average fill price of the entry order
    time_ms: int = 0              # when its entry order filled
    quantity: Decimal = ZERO      # bought
    held: Decimal = ZERO          # bought less a commission taken in the base asset
    cost: Decimal = ZERO          # quote paid
    commission: Decimal = ZERO    # in the base asset
    account: Decimal = ZERO       # the exits': what the account holds of the coin for it
    peak: float = math.nan        # the exits': the trailing stop's peak

    @property
    def entry_price(self) -> float:
        """The average entry fill price as the backtest's levels take it."""
        return float(self.price)


def open_holding(symbol: str, base_asset: str, fills: Sequence[Fill]) -> Holding | None:
    """The position `symbol`'s fills (oldest first) leave open: the entry order of the newest
    fill when that fill is a BUY, else None (flat)."""
    if not fills or fills[-1].side != "BUY":
        return None
    order_id = fills[-1].order_id
    mine = [f for f in fills if f.order_id == order_id]
    qty = sum((f.qty for f in mine), ZERO)
    quote = sum((f.quote_qty for f in mine), ZERO)
    commission = sum((f.commission for f in mine if f.commission_asset == base_asset), ZERO)
    price = mine[0].price if len(mine) == 1 else quote / qty
    return Holding(symbol, price, time_ms=min(f.time_ms for f in mine), quantity=qty,
                   held=qty - commission, cost=quote, commission=commission)


def split_at_close(fills: Sequence[Fill], close_ms: int,
                   keep: Set[tuple[str, int]] = frozenset()) -> tuple[list[Fill], list[Fill]]:
    """(then, later): the fills made before `close_ms` or by one of the orders `keep`
    ((symbol, exchange order id)), and the others (to be taken back by `before_fills`)."""
    then, later = [], []
    for f in fills:
        (then if f.time_ms < close_ms or (f.symbol, f.order_id) in keep else later).append(f)
    return then, later


def before_fills(balances: Mapping[str, Balance], fills: Sequence[Fill],
                 base_assets: Mapping[str, str], quote_asset: str) -> dict[str, Balance]:
    """The balances as they were before `fills` (of the traded symbols) were made: a buy's
    quote (and quote commission) given back and its coins (less a base commission) taken
    away, a sell's the other way round. The difference is put on the free amount."""
    delta: dict[str, Decimal] = {}
    for f in fills:
        base = base_assets[f.symbol]
        sign = 1 if f.side == "BUY" else -1
        base_fee = f.commission if f.commission_asset == base else ZERO
        quote_fee = f.commission if f.commission_asset == quote_asset else ZERO
        delta[quote_asset] = delta.get(quote_asset, ZERO) + sign * f.quote_qty + quote_fee
        delta[base] = delta.get(base, ZERO) - sign * f.qty + base_fee
        if f.commission_asset not in (base, quote_asset) and f.commission:
            delta[f.commission_asset] = delta.get(f.commission_asset, ZERO) + f.commission
    out = dict(balances)
    for asset, d in delta.items():
        b = out.get(asset, Balance(asset, ZERO))
        out[asset] = Balance(asset, b.free + d, b.locked)
    return out


def position_of(index: int, holding: Holding, bar_ms: int) -> Position:
    """The decision step's Position of a holding (symbol `index` of the job)."""
    bar_open = holding.time_ms - holding.time_ms % bar_ms
    price = float(holding.price)
    return Position(symbol=index, paper=False, bar=bar_open // bar_ms, time=bar_open,
                    price=price, quantity=float(holding.quantity), held=float(holding.held),
                    cost=float(holding.cost), fee=float(holding.commission) * price,
                    hour=(bar_open // HOUR_MS) % 24)


def rebuild(symbols: Sequence[str], holdings: Mapping[str, Holding], balances: Mapping[str, Balance],
            base_assets: Mapping[str, str], quote_asset: str, last_close: Sequence[float],
            peaks: Mapping[str, float], bar_ms: int, orders=()) -> DecisionState:
    """The DecisionState of the account now (see the module docstring)."""
    cash = balances.get(quote_asset)
    positions, peak_list, dust = [], [], []
    for i, symbol in enumerate(symbols):
        held_base = balances.get(base_assets[symbol])
        total = held_base.total if held_base is not None else ZERO
        h = holdings.get(symbol)
        if h is not None:
            positions.append(position_of(i, h, bar_ms))
            peak_list.append(peaks.get(symbol, float(h.price)))
            total -= h.held
        dust.append(float(total) if total > 0 else 0.0)
    return DecisionState(cash=float(cash.total) if cash is not None else 0.0,
                         positions=tuple(positions), orders=tuple(orders),
                         hour_stats=hour_stats_of([]), dust=tuple(dust),
                         last_close=tuple(float(c) if c is not None else math.nan for c in last_close),
                         peaks=tuple(peak_list))
