"""Parameters of POST /api/v3/order (and order/test) and POST /api/v3/orderList/oco.

Syntax first, in the order binance-api.md section 7 recommends: every parameter is read and
its format checked (-1100 / -1102), unknown ones are -1104, then the symbol (-1121), the enums
(-1117 side, -1116 type, -1115 timeInForce, -1130 newOrderRespType and
selfTradePreventionMode), the parameters each type needs (-1102) or must not have (-1106),
and the decimals each asset allows (-1111). Filters, balances and the market are the matching
engine's part (`matching.Exchange.place`).
"""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.emulator.http import ApiError, invalid_value, missing_param
from binance_cluster.exchange.emulator.orders import (ORDER_TYPES, RESPONSE_TYPES, SIDES, TIME_IN_FORCE,
                                             NewOco, NewOrder)
from binance_cluster.exchange.emulator.params import TradeParams, check_enum, check_precision
from binance_cluster.engine.symbol_rules import SymbolFilters

MIN_STRATEGY_TYPE = 1_000_000
ABOVE_TYPES = ("STOP_LOSS_LIMIT", "STOP_LOSS", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
BELOW_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
# type -> (needs timeInForce, needs price, needs stopPrice)
NEEDS = {"LIMIT": (True, True, False), "MARKET": (False, False, False),
         "STOP_LOSS": (False, False, True), "STOP_LOSS_LIMIT": (True, True, True),
         "TAKE_PROFIT": (False, False, True), "TAKE_PROFIT_LIMIT": (True, True, True),
         "LIMIT_MAKER": (False, True, False)}

BAD_SIDE = ApiError(400, -1117, "Invalid side.")
BAD_TYPE = ApiError(400, -1116, "Invalid orderType.")
BAD_TIF = ApiError(400, -1115, "Invalid timeInForce.")


def not_required(name: str) -> ApiError:
    """-1106 for a parameter the order type does not take."""
    return ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def _response_type(value: str | None) -> str | None:
    return check_enum(value, RESPONSE_TYPES, invalid_value("newOrderRespType"))


def _stp(value: str | None) -> None:
    check_enum(value, ("NONE",), invalid_value("selfTradePreventionMode"))


def _strategy_type(value: int | None) -> int | None:
    if value is not None and value < MIN_STRATEGY_TYPE:
        raise ApiError(400, -1134, f"strategyType was less than {MIN_STRATEGY_TYPE}.")
    return value


def _unsupported(trailing: str | None, iceberg: Decimal | None) -> None:
    if trailing is not None:
        raise ApiError(400, -2010, "Trailing stop orders are not supported for this symbol.")
    if iceberg is not None and iceberg > 0:
        raise ApiError(400, -2010, "Iceberg orders are not supported for this symbol.")


def _type_fields(type_: str, names: tuple[str, str, str], tif: str | None,
                 price: Decimal | None, stop: Decimal | None) -> None:
    """-1102 for what the type needs, -1106 for what it must not have."""
    for needed, name, value in zip(NEEDS[type_], names, (tif, price, stop)):
        if needed and value is None:
            raise missing_param(name)
        if not needed and value is not None:
            raise not_required(name)


def _precision(spec: SymbolFilters, quantity: Decimal | None, quote: tuple) -> None:
    check_precision("quantity", quantity, spec.base_precision)
    for value in quote:
        check_precision("price", value, spec.quote_precision)


def parse_new_order(p: TradeParams, symbols, spec_of,
                    test: bool = False) -> tuple[NewOrder, bool]:
    """The NewOrder of POST /api/v3/order (`test`: order/test, which also takes
    `computeCommissionRates`) and whether commission rates were asked for; `symbols`: the
    known symbols, `spec_of(symbol)`: its SymbolFilters."""
    symbol = p.get("symbol", required=True)
    side = p.get("side", required=True)
    type_ = p.get("type", required=True)
    tif = p.get("timeInForce")
    quantity = p.decimal("quantity")
    quote_qty = p.decimal("quoteOrderQty")
    price = p.decimal("price")
    stop = p.decimal("stopPrice")
    client_id = p.client_id("newClientOrderId")
    strategy_id = p.integer("strategyId")
    strategy_type = p.integer("strategyType")
    trailing = p.get("trailingDelta")
    iceberg = p.decimal("icebergQty")
    response = p.get("newOrderRespType")
    stp = p.get("selfTradePreventionMode")
    commission = p.get("computeCommissionRates") if test else None
    p.finish()
    if symbol not in symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    check_enum(side, SIDES, BAD_SIDE)
    check_enum(type_, ORDER_TYPES, BAD_TYPE)
    check_enum(tif, TIME_IN_FORCE, BAD_TIF)
    _response_type(response)
    _stp(stp)
    if commission is not None and commission.lower() not in ("true", "false"):
        raise invalid_value("computeCommissionRates")
    if type_ == "MARKET":
        if quantity is None and quote_qty is None:
            raise ApiError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but "
                                       "both were empty/null!")
        if quantity is not None and quote_qty is not None:
            raise not_required("quoteOrderQty")
    else:
        if quantity is None:
            raise missing_param("quantity")
        if quote_qty is not None:
            raise not_required("quoteOrderQty")
    _type_fields(type_, ("timeInForce", "price", "stopPrice"), tif, price, stop)
    _unsupported(trailing, iceberg)
    _strategy_type(strategy_type)
    spec = spec_of(symbol)
    _precision(spec, quantity, (price, stop, quote_qty))
    if type_ == "LIMIT_MAKER":
        tif = "GTC"
    order = NewOrder(symbol=symbol, side=side, type=type_, quantity=quantity,
                     quote_qty=quote_qty, price=price, stop_price=stop, time_in_force=tif,
                     client_id=client_id, response_type=response, strategy_id=strategy_id,
                     strategy_type=strategy_type)
    return order, commission is not None and commission.lower() == "true"


def default_response_type(order: NewOrder) -> str:
    """FULL for MARKET and LIMIT, ACK for every other type (Binance's default)."""
    if order.response_type is not None:
        return order.response_type
    return "FULL" if order.type in ("MARKET", "LIMIT") else "ACK"


def _leg(p: TradeParams, pos: str) -> dict:
    return {"type": p.get(f"{pos}Type", required=True),
            "client_id": p.client_id(f"{pos}ClientOrderId"),
            "iceberg": p.decimal(f"{pos}IcebergQty"),
            "price": p.decimal(f"{pos}Price"),
            "stop": p.decimal(f"{pos}StopPrice"),
            "trailing": p.get(f"{pos}TrailingDelta"),
            "tif": p.get(f"{pos}TimeInForce"),
            "strategy_id": p.integer(f"{pos}StrategyId"),
            "strategy_type": p.integer(f"{pos}StrategyType")}


def _family(side: str, above: str, below: str) -> None:
    """Which leg may be which kind, with Binance's specific codes."""
    if side == "SELL":
        if above.startswith("STOP_LOSS"):
            raise ApiError(400, -1197, "A stop loss order in a sell OCO must be below.")
        if below.startswith("TAKE_PROFIT"):
            raise ApiError(400, -1199, "A take profit order in a sell OCO must be above.")
    else:
        if above == "LIMIT_MAKER":
            raise ApiError(400, -1165, "A limit order in a buy OCO must be below.")
        if above.startswith("TAKE_PROFIT"):
            raise ApiError(400, -1198, "A take profit order in a buy OCO must be below.")
        if below.startswith("STOP_LOSS"):
            raise ApiError(400, -1196, "A stop loss order in a buy OCO must be above.")


def parse_oco(p: TradeParams, symbols, spec_of) -> NewOco:
    """The NewOco of POST /api/v3/orderList/oco (the above/below parameters)."""
    symbol = p.get("symbol", required=True)
    side = p.get("side", required=True)
    quantity = p.decimal("quantity", required=True)
    list_client_id = p.client_id("listClientOrderId")
    response = p.get("newOrderRespType")
    stp = p.get("selfTradePreventionMode")
    legs = {pos: _leg(p, pos) for pos in ("above", "below")}
    p.finish()
    if symbol not in symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    check_enum(side, SIDES, BAD_SIDE)
    check_enum(legs["above"]["type"], ABOVE_TYPES, BAD_TYPE)
    check_enum(legs["below"]["type"], BELOW_TYPES, BAD_TYPE)
    for leg in legs.values():
        check_enum(leg["tif"], TIME_IN_FORCE, BAD_TIF)
    _response_type(response)
    _stp(stp)
    _family(side, legs["above"]["type"], legs["below"]["type"])
    spec = spec_of(symbol)
    built = {}
    for pos, leg in legs.items():
        _type_fields(leg["type"], (f"{pos}TimeInForce", f"{pos}Price", f"{pos}StopPrice"),
                     leg["tif"], leg["price"], leg["stop"])
        _unsupported(leg["trailing"], leg["iceberg"])
        _strategy_type(leg["strategy_type"])
        _precision(spec, quantity, (leg["price"], leg["stop"]))
        built[pos] = NewOrder(symbol=symbol, side=side, type=leg["type"], quantity=quantity,
                              price=leg["price"], stop_price=leg["stop"],
                              time_in_force=leg["tif"] or "GTC", client_id=leg["client_id"],
                              strategy_id=leg["strategy_id"],
                              strategy_type=leg["strategy_type"])
    assert quantity is not None
    return NewOco(symbol=symbol, side=side, quantity=quantity, above=built["above"],
                  below=built["below"], list_client_id=list_client_id, response_type=response)
