"""Signed requests on the emulator: API keys, timing, signatures, parameters, accounts files."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import requests
from binance import Client
from binance.exceptions import BinanceAPIException

from binance_cluster.exchange.emulator.accounts import load_accounts
from binance_cluster.exchange.emulator.auth import strip_signature
from binance_cluster.exchange.emulator.keys import HmacKey, hmac_sha256, verifier_for
from binance_cluster.errors import ConfigError
from support.emulator import emulator, first_open, source_store  # noqa: F401

# The Binance docs' HMAC example (binance-api.md section 3.1).
DOCS_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOCS_PAYLOAD = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
                "&recvWindow=5000&timestamp=1499827319559")
DOCS_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def api_error(fn, *args, **kwargs) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        fn(*args, **kwargs)
    return info.value


def client_for(url: str, key: str = "demo", secret: str | None = "demo", **kw) -> Client:
    client = Client(key, secret, ping=False, **kw)
    client.API_URL = url + "/api"
    return client


def signed_call(url: str, method: str, path: str, query: str = "", body: str = "",
                key: str | None = "demo", secret: str = "demo", signature: str | None = None):
    """A hand-made signed request: HMAC over query + body (no separator), appended to the
    body when there is one, else to the query."""
    sig = signature if signature is not None else \
        hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    if body:
        body = f"{body}&signature={sig}"
    else:
        query = f"{query}&signature={sig}" if query else f"signature={sig}"
    headers = dict(FORM)
    if key is not None:
        headers["X-MBX-APIKEY"] = key
    return requests.request(method, f"{url}{path}?{query}" if query else url + path,
                            data=body or None, headers=headers, timeout=5)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def market(emulator, source_store):
    """Factory: an emulator trading from the middle of the real candles (demo account)."""
    def start(**overrides):
        settings = {"start_ms": first_open(source_store) + 1000 * 60_000 + 5_000}
        settings.update(overrides)
        return emulator(**settings)
    return start


# -- the signature algorithm -------------------------------------------------------------------
def test_docs_hmac_test_vector():
    assert hmac_sha256(DOCS_SECRET, DOCS_PAYLOAD.encode()) == DOCS_SIGNATURE
    key = HmacKey(DOCS_SECRET)
    assert key.verify(DOCS_PAYLOAD.encode(), DOCS_SIGNATURE.upper())  # hex compared any case
    assert not key.verify(DOCS_PAYLOAD.replace("0.1", "0.2").encode(), DOCS_SIGNATURE)
    assert strip_signature(f"a=1&signature={DOCS_SIGNATURE}&b=2") == "a=1&b=2"


def test_docs_vector_over_http_body_and_split_query_body(market, tmp_path):
    accounts = tmp_path / "docs.json"
    accounts.write_text(json.dumps({DOCS_KEY: {"secret": DOCS_SECRET}}))
    with market(accounts=accounts, timestamp_check=False) as (url, _):
        whole = signed_call(url, "POST", "/api/v3/order/test", body=DOCS_PAYLOAD,
                            key=DOCS_KEY, signature=DOCS_SIGNATURE)
        tampered = signed_call(url, "POST", "/api/v3/order/test",
                               body=DOCS_PAYLOAD.replace("quantity=1", "quantity=2"),
                               key=DOCS_KEY, signature=DOCS_SIGNATURE)
        query, body = DOCS_PAYLOAD.split("&quantity")
        body = "quantity" + body
        split = signed_call(url, "POST", "/api/v3/order/test", query=query, body=body,
                            key=DOCS_KEY, secret=DOCS_SECRET)
        with_separator = hmac.new(DOCS_SECRET.encode(), f"{query}&{body}".encode(),
                                  hashlib.sha256).hexdigest()
        separated = signed_call(url, "POST", "/api/v3/order/test", query=query, body=body,
                                key=DOCS_KEY, signature=with_separator)
    # the signature is accepted; LTCBTC is not an emulated symbol
    assert (whole.status_code, whole.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert (split.status_code, split.json()["code"]) == (400, -1121)
    for bad in (tampered, separated):
        assert bad.status_code == 400
        assert bad.json() == {"code": -1022, "msg": "Signature for this request is not valid."}


# -- API keys ----------------------------------------------------------------------------------
def test_api_key_missing_malformed_or_unknown(market):
    with market() as (url, _):
        missing = signed_call(url, "GET", "/api/v3/account", f"timestamp={now_ms()}", key=None)
        malformed = signed_call(url, "GET", "/api/v3/account", f"timestamp={now_ms()}",
                                key="not a key!")
        unknown = api_error(client_for(url, "someoneElse", "x").get_account)
        public = requests.get(url + "/api/v3/ping", timeout=5)  # public: no key needed
    assert (missing.status_code, missing.json()) == \
        (401, {"code": -2014, "msg": "API-key format invalid."})
    assert (malformed.status_code, malformed.json()["code"]) == (401, -2014)
    assert (unknown.status_code, unknown.code, unknown.message) == \
        (401, -2015, "Invalid API-key, IP, or permissions for action.")
    assert public.status_code == 200


def test_demo_account_is_there_without_an_accounts_file(market):
    with market() as (url, _):
        usdt = client_for(url).get_asset_balance(asset="USDT")
    assert usdt == {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"}


# -- mandatory parameters, formats, timing -----------------------------------------------------
def test_mandatory_timestamp_signature_and_number_formats(market):
    with market() as (url, _):
        no_stamp = signed_call(url, "GET", "/api/v3/account", "recvWindow=5000")
        no_sig = requests.get(f"{url}/api/v3/account?timestamp={now_ms()}",
                              headers={"X-MBX-APIKEY": "demo"}, timeout=5)
        bad_stamp = signed_call(url, "GET", "/api/v3/account", "timestamp=17e11")
        too_wide = signed_call(url, "GET", "/api/v3/account",
                               f"recvWindow=60001&timestamp={now_ms()}")
        too_fine = signed_call(url, "GET", "/api/v3/account",
                               f"recvWindow=5000.1234&timestamp={now_ms()}")
        fine = signed_call(url, "GET", "/api/v3/account",
                           f"recvWindow=60000&timestamp={now_ms()}")
        micro = signed_call(url, "GET", "/api/v3/account", f"timestamp={now_ms() * 1000}")
    assert no_stamp.json() == {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not "
                                                     "sent, was empty/null, or malformed."}
    assert no_sig.json()["code"] == -1102 and "'signature'" in no_sig.json()["msg"]
    assert bad_stamp.json()["code"] == -1100 and "'timestamp'" in bad_stamp.json()["msg"]
    assert too_wide.json() == {"code": -1102, "msg": "'recvWindow' contains unexpected value. "
                                                     "Cannot be greater than 60000."}
    assert too_fine.json()["code"] == -1100
    assert fine.status_code == micro.status_code == 200


def test_timestamp_is_checked_against_the_server_clock(market):
    with market() as (url, control):
        client = client_for(url)
        client.timestamp_offset = 3_000
        ahead = api_error(client.get_account)
        client.timestamp_offset = -15_000  # python-binance sends recvWindow=10000
        late = api_error(client.get_account)
        client.REQUEST_RECVWINDOW = 20_000
        client.get_account()
        client.timestamp_offset = 0
        client.REQUEST_RECVWINDOW = 10_000
        control.advance_server(30_000)  # the server clock runs ahead of the client
        behind = api_error(client.get_account)
        client.timestamp_offset = 30_000
        client.get_account()
        control.set_faults(skew_ms=-20_000)  # what /time tells, not what the check uses
        client.get_account()
    assert (ahead.status_code, ahead.code, ahead.message) == \
        (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    for err in (late, behind):
        assert (err.code, err.message) == \
            (-1021, "Timestamp for this request is outside of the recvWindow.")
    with market(timestamp_check=False) as (url, _):
        client = client_for(url)
        client.timestamp_offset = -3_600_000
        assert client.get_account()["accountType"] == "SPOT"


# -- signatures and parameters through python-binance ------------------------------------------
def test_bad_signatures_are_1022(market):
    with market() as (url, _):
        wrong = api_error(client_for(url, "demo", "not-the-secret").get_account)
        client = client_for(url)
        colon = api_error(client.order_market_buy, symbol="BTCUSDT", quantity="0.001",
                          newClientOrderId="my:id/1")
        placed = client.get_all_orders(symbol="BTCUSDT")
    assert (wrong.status_code, wrong.code) == (400, -1022)
    # python-binance signs "my:id/1" but form-encodes "my%3Aid%2F1": the raw body differs
    assert (colon.code, colon.message) == (-1022, "Signature for this request is not valid.")
    assert placed == []


def test_duplicate_unknown_and_query_over_body_parameters(market):
    stamp = now_ms()
    with market() as (url, _):
        duplicate = signed_call(url, "POST", "/api/v3/order",
                                body=f"symbol=BTCUSDT&symbol=BTCUSDT&side=BUY&type=MARKET"
                                     f"&quantity=0.001&timestamp={stamp}")
        unknown = api_error(client_for(url).order_market_buy, symbol="BTCUSDT",
                            quantity="0.001", quantityy="1")
        both = signed_call(url, "POST", "/api/v3/order",
                           query=f"symbol=BTCUSDT&newClientOrderId=fromQuery&timestamp={stamp}",
                           body="symbol=ETHUSDT&side=BUY&type=MARKET&quantity=0.001"
                                "&newClientOrderId=fromBody")
        client = client_for(url)
        eth = client.get_all_orders(symbol="ETHUSDT")
    assert (duplicate.status_code, duplicate.json()) == \
        (400, {"code": -1101, "msg": "Duplicate values for parameter 'symbol'."})
    assert (unknown.code, unknown.message) == \
        (-1104, "Not all sent parameters were read; read '8' parameter(s) but was sent '9'.")
    assert both.status_code == 200, both.text
    assert (both.json()["symbol"], both.json()["clientOrderId"]) == ("BTCUSDT", "fromQuery")
    assert eth == []


def test_exponent_quantity_is_1100_with_binances_message(market):
    with market() as (url, _):
        err = api_error(client_for(url).order_market_buy, symbol="BTCUSDT", quantity=0.00001)
    assert (err.status_code, err.code, err.message) == (
        400, -1100, "Illegal characters found in parameter 'quantity'; legal range is "
                    "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")


def test_ed25519_keys_sign_get_post_and_delete(market, tmp_path):
    from Crypto.PublicKey import ECC

    key = ECC.generate(curve="ed25519")
    other = ECC.generate(curve="ed25519")
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[edKey1]\ned25519_public_key = """\n'
                        f'{key.public_key().export_key(format="PEM")}\n"""\n'
                        'balances = { USDT = "1000" }\n')
    with market(accounts=accounts) as (url, _):
        client = client_for(url, "edKey1", None, private_key=key.export_key(format="PEM"))
        balance = client.get_asset_balance(asset="USDT")
        price = float(client.get_symbol_ticker(symbol="BTCUSDT")["price"])
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                       price=f"{price * 0.9:.2f}")
        canceled = client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
        forged = api_error(client_for(url, "edKey1", None,
                                      private_key=other.export_key(format="PEM")).get_account)
    assert balance["free"] == "1000.00000000"
    assert canceled["status"] == "CANCELED"
    assert (forged.code, forged.message) == (-1022, "Signature for this request is not valid.")


# -- accounts files ----------------------------------------------------------------------------
def test_accounts_file_errors_name_the_file_and_account_never_the_key(tmp_path):
    def error(text: str, suffix: str = ".json") -> str:
        path = tmp_path / f"accounts{suffix}"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_accounts(path)
        message = str(info.value)
        assert str(path) in message and "secretKey9" not in message
        return message

    assert "account 2: unknown key(s) balance" in error(json.dumps(
        {"secretKey1": {"secret": "s"}, "secretKey9": {"secret": "s", "balance": {}}}))
    assert "exactly one of secret" in error(json.dumps({"secretKey9": {}}))
    assert "balances.USDT must be a non-negative decimal" in error(json.dumps(
        {"secretKey9": {"secret": "s", "balances": {"USDT": "-5"}}}))
    assert "taker_commission is a fraction" in error(json.dumps(
        {"secretKey9": {"secret": "s", "taker_commission": 10}}))
    assert "1-128 letters and digits" in error(json.dumps({"secret Key9": {"secret": "s"}}))
    assert "not valid TOML" in error("[secretKey9\nsecret = 1", ".toml")
    ed = tmp_path / "ed.json"
    ed.write_text(json.dumps({"edKey1": {"ed25519_public_key": "not a key"}}))
    with pytest.raises(ConfigError, match="ed.json: account 1: ed25519_public_key is not a PEM"):
        verifier_for(load_accounts(ed)[0], f"{ed}: account 1")
    with pytest.raises(ConfigError, match="cannot read accounts file"):
        load_accounts(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text('[keyK1]\nsecret = "topSecret42"\nbalances = { USDT = 12.5, BTC = "0.1" }\n'
                    'maker_commission = 0.0005\n')
    spec = load_accounts(good)[0]
    assert spec.balances == (("USDT", Decimal("12.5")), ("BTC", Decimal("0.1")))
    assert (spec.maker_commission, spec.taker_commission) == (Decimal("0.0005"),
                                                              Decimal("0.001"))
    assert "keyK1" not in repr(spec) and "topSecret42" not in repr(spec)


def test_exchange_sim_command_takes_an_accounts_file(source_store, tmp_path):
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[cliKey1]\nsecret = "cliSecret1"\nbalances = { USDT = "321" }\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "binance_cluster", "exchange-sim", "--store",
         str(source_store.root), "--port", "0", "--speed", "0", "--start", "2025-05-05T00:00",
         "--accounts", str(accounts), "--slippage-bps", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = proc.stdout.readline()
        assert line.startswith("exchange-sim: listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        client = client_for(url, "cliKey1", "cliSecret1")
        assert client.get_asset_balance(asset="USDT")["free"] == "321.00000000"
        assert api_error(client_for(url).get_account).code == -2015  # no demo account
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "cliKey1" not in out + err and "cliSecret1" not in out + err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cliKey1": {"secret": "s", "balances": {"USDT": "lots"}}}))
    failed = subprocess.run([sys.executable, "-m", "binance_cluster", "exchange-sim", "--store",
                             str(source_store.root), "--port", "0", "--accounts", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "bad.json: account 1: balances.USDT must be a non-negative decimal" in failed.stderr
