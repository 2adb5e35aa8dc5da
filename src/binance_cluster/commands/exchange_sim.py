"""Run a local Binance-compatible exchange that replays the candles of a store.

Serves the public REST endpoints python-binance uses (ping, time, exchangeInfo, klines,
ticker/price, ticker/bookTicker, avgPrice) and the signed trading ones (order, order/test,
orderList/oco, openOrders, allOrders, myTrades, account, rateLimit/order) on 127.0.0.1, with
Binance's weight and order-rate limits, error codes and headers. Candles are served only once
closed by the replay clock, which starts at --start (default: one day after the latest first
candle among the symbols) and runs at --speed times real time (0 freezes it).
/api/v3/time reports the wall clock, which signed requests' timestamps are checked against;
the replay time is in the X-Replay-Time header of every answer.

Orders fill by the project's fill rules (the backtest's): MARKET at the open of the candle
forming on the replay clock (plus --slippage-bps), resting limits and stops on later candle
highs and lows (own price, or the open when a candle gaps through), fees in the asset
received. Accounts come from --accounts FILE (JSON or TOML: API key -> secret or
ed25519_public_key, balances, maker_commission, taker_commission); without it there is one
demo account: API key "demo", secret "demo", 10,000 USDT. Keys are never printed or logged.

Admin endpoints (not Binance): GET/POST /admin/clock ({"set": ms} | {"advance": ms} |
{"speed": x}; resting orders match as the clock moves), GET/POST /admin/faults (seeded fault
injection: 5xx, 429, 418, delays, dropped answers (an order accepted but its answer lost),
clock skew), /admin/limits. Stop it with Ctrl-C.

  binance-cluster exchange-sim --store data/demo --port 8765 --speed 60
  binance-cluster exchange-sim --store data/demo --accounts accounts.toml --slippage-bps 2

  python -c 'from binance import Client; c = Client("demo", "demo", ping=False);
  c.API_URL = "http://127.0.0.1:8765/api";
  print(c.order_market_buy(symbol="BTCUSDT", quantity="0.001"))'
"""

from __future__ import annotations

import json
import sys

NAME = "exchange-sim"
HELP = "run a local Binance-compatible exchange (market data and trading) replaying a store"


def add_arguments(p) -> None:
    p.add_argument("--store", required=True, help="store directory to replay")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765,
                   help="port (default: 8765; 0 picks a free one)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default: all)")
    p.add_argument("--start", default=None,
                   help="replay start, UTC (default: one day after the latest first candle)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="replay speed, x real time (default: 1; 0 freezes the replay clock)")
    p.add_argument("--forming-candle", choices=("none", "synthetic"), default="none",
                   help="the in-progress kline: left out, or a synthetic O=H=L=C=open row "
                        "with zero volume (default: none)")
    p.add_argument("--weight-limit", type=int, default=6000,
                   help="request weight per minute before 429 (default: 6000; 0: no limit)")
    p.add_argument("--half-spread-bps", type=float, default=1.0,
                   help="book ticker: bid/ask distance from the last price, in bps (default: 1)")
    p.add_argument("--symbol-config", default=None,
                   help="JSON or TOML file overriding symbol filters, e.g. "
                        '{"BTCUSDT": {"tick_size": "0.01"}}')
    p.add_argument("--accounts", default=None, metavar="FILE",
                   help="JSON or TOML accounts file: API key -> {secret | ed25519_public_key, "
                        "balances, maker_commission, taker_commission} (default: the demo "
                        "account, key and secret 'demo', 10,000 USDT)")
    p.add_argument("--slippage-bps", type=float, default=0.0,
                   help="MARKET fills move this many bps against the trader (default: 0)")
    p.add_argument("--resting-from", choices=("placement", "next"), default="placement",
                   help="first candle that can fill a resting order: the one it was placed "
                        "in (treated as placed at its open, like the backtest) or the next "
                        "(default: placement)")
    p.add_argument("--order-limit", type=int, default=100,
                   help="orders per 10 seconds per account before -1015 (default: 100; 0: "
                        "no limit; the daily limit is 200,000)")
    p.add_argument("--no-timestamp-check", action="store_true",
                   help="accept signed requests whatever their timestamp (recvWindow)")
    p.add_argument("--faults", default=None,
                   help='initial fault injection as JSON or @FILE, e.g. \'{"seed": 1, '
                        '"rates": {"5xx": 0.01}}\' (default: off)')


def _faults(text: str | None):
    from binance_cluster.exchange.emulator.faults import FaultConfig
    from binance_cluster.errors import ConfigError

    if not text:
        return FaultConfig()
    where = "--faults"
    if text.startswith("@"):
        where = text[1:]
        try:
            with open(where) as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read fault config ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    return FaultConfig.from_dict(data, where)


def run(args) -> int:
    from binance_cluster.exchange.emulator.config import EmulatorConfig
    from binance_cluster.exchange.emulator.server import serve_forever
    from binance_cluster.candles.store import check_symbol
    from binance_cluster.types import format_time_ms, parse_time_ms

    symbols = None
    if args.symbols:
        symbols = tuple(check_symbol(s.strip().upper())
                        for s in args.symbols.split(",") if s.strip())
    config = EmulatorConfig(
        store=args.store, host=args.host, port=args.port,
        start_ms=parse_time_ms(args.start, "--start") if args.start else None,
        speed=args.speed, forming_candle=args.forming_candle, weight_limit=args.weight_limit,
        half_spread_bps=args.half_spread_bps, symbol_config=args.symbol_config,
        symbols=symbols, faults=_faults(args.faults), accounts=args.accounts,
        slippage_bps=args.slippage_bps, resting_from=args.resting_from,
        order_limit_10s=args.order_limit, timestamp_check=not args.no_timestamp_check)

    def ready(url: str, state) -> None:
        limit = f"{config.weight_limit}/min" if config.weight_limit else "off"
        print(f"exchange-sim: listening on {url}", flush=True)
        print(f"  {len(state.symbols)} symbols ({', '.join(state.symbols[:8])}"
              f"{', ...' if len(state.symbols) > 8 else ''}); replay from "
              f"{format_time_ms(state.start_ms)} UTC at {config.speed:g}x; forming candle: "
              f"{config.forming_candle}; weight limit: {limit}", flush=True)
        accounts = f"{len(state.exchange.accounts)} from {config.accounts}" \
            if config.accounts else "the demo account (API key and secret: see --help)"
        print(f"  accounts: {accounts}; slippage: {config.slippage_bps:g} bps; order limit: "
              f"{config.order_limit_10s or 'off'}/10s", flush=True)
        print(f"  python-binance: client.API_URL = '{url}/api'; admin: {url}/admin/clock, "
              f"{url}/admin/faults", flush=True)

    serve_forever(config, ready)
    print("exchange-sim: stopped", file=sys.stderr)
    return 0
