"""Where a live job trades: the one place that picks the broker for a mode and reads API keys.

- `paper` (the default): `PaperBroker` on the public klines of `--base-url` (Binance's
  mainnet API when not given) through `ExchangeFeed`; no keys; the account starts with the
  job's `risk.initial_cash` in the symbols' quote asset and fills by the job's fee and slippage.
  It is kept beside the journal (`paper_state_file`) after every change, so a paper job
  restarted on its journal resumes its account; a new journal starts a new account.
- `testnet`: `BinanceBroker` on Binance's spot testnet, or on `--base-url` (the project's
  emulator, another test exchange), with `TEST_BINANCE_API_KEY` / `TEST_BINANCE_API_SEC`.
- `live`: `BinanceBroker` on mainnet with `BINANCE_API_KEY` / `BINANCE_API_SEC`, only with the
  command's confirmation flag AND `BINANCE_CLUSTER_LIVE=yes` (`broker.keys.check_live_opt_in`).

The live loop's journal tells a new order from one sent before a restart (its intent is
journaled before the send), so the broker skips its own look-up before every submit.
Keys are read on rank 0 only and stay inside the broker: nothing here returns, logs or
broadcasts them. A key the venue does not accept (a testnet key on mainnet, a revoked one)
is refused at start with a line naming the variable, never at the first order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from decimal import Decimal
from typing import Mapping

from binance_cluster.errors import ConfigError
from binance_cluster.exchange.broker.base import Broker
from binance_cluster.exchange.broker.errors import AuthenticationError
from binance_cluster.exchange.broker.keys import check_live_opt_in, key_vars, read_keys
from binance_cluster.exchange.transport import DEFAULT_BASE_URL
from binance_cluster.live.job import LiveJob

TESTNET_URL = "https://testnet.binance.vision"


@dataclass(frozen=True, slots=True)
class Venue:
    """The command line's choice: mode, an explicit base URL, the real-money confirmation."""

    mode: str = "paper"
    base_url: str | None = None
    confirm_live: bool = False

    def __post_init__(self) -> None:
        if self.mode == "live" and self.base_url is not None:
            raise ConfigError("--base-url: --mode live trades on Binance's mainnet only "
                              "(use --mode testnet for another exchange)")

    @property
    def public_url(self) -> str:
        """Where every rank reads the public klines: the exchange the orders go to."""
        if self.base_url is not None:
            return self.base_url
        return TESTNET_URL if self.mode == "testnet" else DEFAULT_BASE_URL

    @property
    def network(self) -> str:
        """The keys' network: mainnet, testnet or custom (an explicit base URL)."""
        if self.mode == "live":
            return "mainnet"
        return "custom" if self.base_url is not None else "testnet"


def open_broker(live_job: LiveJob, venue: Venue, rank: int,
                env: Mapping[str, str] = os.environ) -> Broker:
    """The broker of `venue` (rank 0 only); ConfigError for missing or refused keys."""
    if rank != 0:
        raise ConfigError(f"the broker is opened on rank 0 only (this is rank {rank})")
    job = live_job.job
    if venue.mode == "paper":
        from binance_cluster.exchange.broker.feeds import ExchangeFeed
        from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig

        feed = ExchangeFeed(venue.public_url, job.interval, live_job.live.timeout_seconds)
        quote = quote_asset(feed, job.symbols)
        fee = job.risk.fee_rate
        state = paper_state_file(live_job)
        if not Path(live_job.live.journal).exists():
            state.unlink(missing_ok=True)         # an account of a journal no longer there
        state.parent.mkdir(parents=True, exist_ok=True)
        return PaperBroker(feed, {quote: Decimal(repr(float(job.risk.initial_cash)))},
                           PaperConfig(maker_fee=fee, taker_fee=fee, slippage=job.risk.slippage),
                           state_file=state)
    from binance_cluster.exchange.broker.binance import BinanceBroker

    if venue.mode == "live":
        check_live_opt_in(venue.confirm_live, env)
    config = broker_config(live_job, venue)
    read_keys(config.venue, env, rank, config.allow_live)      # missing keys: refused here
    broker = BinanceBroker(config, env=env, rank=rank)
    try:
        broker.balances()
    except AuthenticationError:
        key_name, _ = key_vars(config.venue)
        broker.close()
        raise ConfigError(f"{key_name}: the {venue.mode} exchange at {venue.public_url} does not "
                          "accept this key (a key of another venue, or revoked)") from None
    return broker


def paper_state_file(live_job: LiveJob) -> Path:
    """Where paper mode keeps its account: `paper-account.pickle` beside the journal."""
    return Path(live_job.live.journal).with_name("paper-account.pickle")


def broker_config(live_job: LiveJob, venue: Venue):
    """The `BinanceBroker` settings of a testnet or live venue: where, the job's request timeout
    and recvWindow, and no look-up before each submit (the journal tells a re-sent decision)."""
    from binance_cluster.exchange.broker.binance import BinanceBrokerConfig

    timing = dict(timeout_s=live_job.live.timeout_seconds,
                  recv_window_ms=live_job.live.recv_window_ms, check_before_submit=False)
    if venue.mode == "live":
        return BinanceBrokerConfig(network="mainnet", allow_live=True, **timing)
    return BinanceBrokerConfig(network="testnet", base_url=venue.base_url, **timing)


def quote_asset(market, symbols) -> str:
    """The one quote asset of the job's symbols (ConfigError when they differ)."""
    quotes = {s: market.filters(s).quote_asset for s in symbols}
    found = sorted(set(quotes.values()))
    if len(found) != 1:
        raise ConfigError("symbols: the live loop keeps one cash balance; the symbols are quoted "
                          f"in {', '.join(found)}")
    return found[0]
