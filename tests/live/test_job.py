"""The live job's `[live]` request settings: read with their defaults, refused out of range
with the key named, and handed to the broker of a testnet or live venue."""

from __future__ import annotations

from pathlib import Path

import pytest

from binance_cluster.errors import ConfigError
from binance_cluster.live.job import load_live_job
from binance_cluster.live.venue import Venue, broker_config
from support.live import live_job_text

SYMBOLS = ("BTCUSDT", "ETHUSDT")
SMA = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\n"


def job_file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "job.toml"
    text = live_job_text("sma_cross", SMA, SYMBOLS, "15m", tmp_path / "store", tmp_path / "out",
                         None, 1_746_403_200_000, "", 10_000.0, 0.001, 0.0)
    path.write_text(text.replace("[live]\n", "[live]\n" + extra))
    return path


def test_request_timeout_and_recv_window_default_and_reach_the_broker(tmp_path):
    default = load_live_job(str(job_file(tmp_path, "")), "testnet").live
    assert (default.timeout_seconds, default.recv_window_ms) == (10.0, 5000)
    live_job = load_live_job(str(job_file(tmp_path, "timeout_seconds = 0.5\nrecv_window_ms = 1500\n")),
                             "testnet")
    assert (live_job.live.timeout_seconds, live_job.live.recv_window_ms) == (0.5, 1500)
    for venue in (Venue("testnet", "http://127.0.0.1:9"), Venue("live", None, True)):
        config = broker_config(live_job, venue)
        assert (config.timeout_s, config.recv_window_ms) == (0.5, 1500)
        assert config.check_before_submit is False
    assert broker_config(live_job, Venue("live", None, True)).network == "mainnet"


@pytest.mark.parametrize("line, key", [("timeout_seconds = 0\n", "live.timeout_seconds"),
                                       ("timeout_seconds = 500\n", "live.timeout_seconds"),
                                       ("recv_window_ms = 0\n", "live.recv_window_ms"),
                                       ("recv_window_ms = 60001\n", "live.recv_window_ms"),
                                       ("recv_window_ms = 1.5\n", "live.recv_window_ms")])
def test_out_of_range_request_settings_are_refused_naming_the_key(tmp_path, line, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_live_job(str(job_file(tmp_path, line)), "testnet")
