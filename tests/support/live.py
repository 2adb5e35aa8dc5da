"""Helpers of the live tests: fills made up by hand (prices and quantities as decimal text), and
journals of paper runs on real candles."""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.broker.base import Fill

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC


def fake_fill(symbol: str, trade_id: int, side: str, price: str, qty: str, commission: str, asset: str,
              time_ms: int = T0, order_id: int = 1) -> Fill:
    """A Fill whose quote quantity is price x quantity."""
    return Fill(symbol=symbol, order_id=order_id, trade_id=trade_id, side=side, price=Decimal(price),
                qty=Decimal(qty), quote_qty=Decimal(price) * Decimal(qty), commission=Decimal(commission),
                commission_asset=asset, time_ms=time_ms)


def paper_journal(path, candles: dict, job: str = "report-test", every: int = 45, hold: int = 20,
                  stake: str = "500", max_open: int = 1, bad_every: int = 7) -> None:
    """A journal the journal module writes from a paper run over real candles (`candles`:
    symbol -> 1m Candles, all on the same bars): real market orders sent to a `PaperBroker`
    (fills by the project's order engine), every answer, fill, error and risk refusal journaled.

    Symbol k buys `stake` quote at the close of every `every`-th bar (offset by k * every // len)
    and sells what it holds `hold` to 2 x `hold` bars later. Entries go through `live.risk.check_entry` with
    at most `max_open` open positions (refusals journaled); every `bad_every`-th entry asks for
    1 quote, which the minimum notional refuses (an exchange error journaled). A decision's
    `detail["price"]` is the close it was taken at; each bar's equity is the paper account's
    quote plus what it holds at the close.
    """
    import time

    from binance_cluster.exchange.broker import OrderRequest, client_order_id
    from binance_cluster.exchange.broker.feeds import CandleFeed
    from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig
    from binance_cluster.exchange.emulator.symbols import derive_spec
    from binance_cluster.errors import ExchangeError
    from binance_cluster.live.journal import BarRecord, Journal
    from binance_cluster.live.risk import AccountView, RiskLimits, check_entry

    symbols = list(candles)
    first = candles[symbols[0]]
    filters = {s: derive_spec(s, float(c.close[0])) for s, c in candles.items()}
    feed = CandleFeed(candles, filters, now_ms=int(first.open_time[0]))
    paper = PaperBroker(feed, {"USDT": "10000"}, PaperConfig(slippage=0.0005))
    limits = RiskLimits(max_open_positions=max_open)
    held: dict[str, tuple[int, Decimal]] = {}      # symbol -> (sell bar, quantity)
    entries = 0
    with Journal(path, job=job) as j:
        for s, f in filters.items():
            j.record_symbol(s, f.base_asset, f.quote_asset)
        for i in range(len(first) - 1):
            bar_ms = int(first.open_time[i])
            close_ms = bar_ms + 60_000
            feed.set_now(close_ms + 40)            # the next candle is forming: its open fills
            started = time.perf_counter()
            orders, last_order = 0, None
            decided = close_ms + 40 + int((time.perf_counter() - started) * 1000) + 1
            for k, s in enumerate(symbols):
                close = Decimal(repr(float(candles[s].close[i])))
                request = None
                if s in held and held[s][0] == i:
                    qty = filters[s].floor_qty(held.pop(s)[1])
                    request = OrderRequest(s, "SELL", "MARKET", client_order_id(job, s, bar_ms, "exit"),
                                           quantity=qty)
                    j.record_decision(bar_ms, s, "exit", bar_ms, detail={"price": str(close)},
                                      time_ms=decided)
                elif s not in held and (i + k * every // len(symbols)) % every == every - 1:
                    entries += 1
                    amount = "1" if entries % bad_every == 0 else stake
                    refusal = check_entry(s, Decimal(amount), limits,
                                          AccountView(len(held), Decimal(0), Decimal(0)), False)
                    j.record_decision(bar_ms, s, "entry", bar_ms, detail={"price": str(close)},
                                      time_ms=decided)
                    if refusal is not None:
                        j.record_refusal(bar_ms, s, refusal.rule, refusal.detail, time_ms=decided)
                        continue
                    request = OrderRequest(s, "BUY", "MARKET", client_order_id(job, s, bar_ms, "entry"),
                                           quote_amount=amount)
                if request is None:
                    continue
                sent = decided + int((time.perf_counter() - started) * 1000)
                j.record_intent(request, "exit" if request.side == "SELL" else "entry", bar_ms,
                                time_ms=sent)
                try:
                    order = paper.submit(request)
                except ExchangeError as exc:
                    j.record_error(request.client_id, str(exc), exc.code, time_ms=sent)
                    continue
                j.record_answer(order, time_ms=sent)
                orders, last_order = orders + 1, sent
                if request.side == "BUY":
                    base = filters[s].base_asset
                    held[s] = (i + hold + (entries * 7) % hold, paper.balances()[base].free)
            equity = Decimal(0)
            for asset, balance in paper.balances().items():
                amount = balance.free + balance.locked
                if asset == "USDT":
                    equity += amount
                else:
                    s = next(x for x in symbols if filters[x].base_asset == asset)
                    equity += amount * Decimal(repr(float(candles[s].close[i])))
            j.record_bar(BarRecord(bar_ms=bar_ms, close_ms=close_ms, decided_ms=decided,
                                   last_order_ms=last_order, orders=orders, equity=equity,
                                   skipped={}))
