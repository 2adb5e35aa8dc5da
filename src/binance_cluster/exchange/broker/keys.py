"""API keys from the environment, on rank 0 only, never shown.

Which pair is read:

- `mainnet` (real money): `BINANCE_API_KEY` / `BINANCE_API_SEC`, and only with an explicit
  opt-in: the caller passes `allow_live=True` (the `live` command's `--live` flag) AND the
  environment has `BINANCE_CLUSTER_LIVE=yes`. Without both, ConfigError before any key is read.
- `testnet` (Binance spot testnet) and any explicit base URL (the project's emulator, or
  another test exchange): `TEST_BINANCE_API_KEY` / `TEST_BINANCE_API_SEC`. A base URL on
  Binance's own hosts is refused (`BinanceBrokerConfig`): real money goes through `mainnet`.

Keys are read on rank 0 only: a rank other than 0 (given, or read from the MPI launcher's
environment: PMI_RANK, OMPI_COMM_WORLD_RANK, PMIX_RANK) gets ConfigError. `ApiKeys` never
shows its values (repr/str name the variables only) and refuses to be pickled, so it cannot
be broadcast to worker ranks by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from binance_cluster.errors import ConfigError

NETWORKS = ("mainnet", "testnet", "custom")
LIVE_VARS = ("BINANCE_API_KEY", "BINANCE_API_SEC")
TEST_VARS = ("TEST_BINANCE_API_KEY", "TEST_BINANCE_API_SEC")
LIVE_OPT_IN = "BINANCE_CLUSTER_LIVE"
RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


@dataclass(frozen=True, slots=True, repr=False)
class ApiKeys:
    """An API key and secret, and the variables they came from (values never shown)."""

    key: str = field(repr=False)
    secret: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"ApiKeys(from {self.source or 'caller'}, values hidden)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("API keys cannot be pickled: they stay on rank 0")


def launcher_rank(env: Mapping[str, str] = os.environ) -> int:
    """This process's rank as the MPI launcher set it in the environment (0 when not launched)."""
    for name in RANK_VARS:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def key_vars(network: str) -> tuple[str, str]:
    """The (key, secret) environment variable names used for `network`."""
    if network not in NETWORKS:
        raise ConfigError(f"unknown network {network!r} (known: {', '.join(NETWORKS)})")
    return LIVE_VARS if network == "mainnet" else TEST_VARS


def check_live_opt_in(allow_live: bool, env: Mapping[str, str] = os.environ) -> None:
    """ConfigError unless real-money trading was asked for twice: flag and environment."""
    if not allow_live:
        raise ConfigError("mainnet trading uses real money: it needs the --live flag "
                          f"(allow_live=True) and {LIVE_OPT_IN}=yes in the environment")
    if env.get(LIVE_OPT_IN, "").strip().lower() != "yes":
        raise ConfigError(f"mainnet trading uses real money: set {LIVE_OPT_IN}=yes in the "
                          "environment to confirm (the --live flag alone is not enough)")


def read_keys(network: str, env: Mapping[str, str] = os.environ, rank: int | None = None,
              allow_live: bool = False) -> ApiKeys:
    """The API keys for `network` from `env`; ConfigError names the missing variable."""
    key_name, secret_name = key_vars(network)
    actual = launcher_rank(env) if rank is None else rank
    if actual != 0:
        raise ConfigError(f"API keys are read on rank 0 only (this is rank {actual}); worker "
                          "ranks never talk to the account")
    if network == "mainnet":
        check_live_opt_in(allow_live, env)
    key = env.get(key_name, "").strip()
    secret = env.get(secret_name, "").strip()
    missing = [name for name, value in ((key_name, key), (secret_name, secret)) if not value]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not set in the environment (needed for the "
                          f"{network} broker)")
    return ApiKeys(key, secret, f"{key_name}/{secret_name}")
