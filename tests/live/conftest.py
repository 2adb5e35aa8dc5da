"""Fixtures of the live tests: a funded trading venue on the emulator with real candles."""

from support.broker import trading  # noqa: F401  (pytest fixture)
from support.emulator import source_store  # noqa: F401  (pytest fixture)


import pytest  # noqa: E402

from support.live import ENV, REPLAY_SYMBOLS, build_source  # noqa: E402


@pytest.fixture(scope="module")
def replay_source(shared_data, tmp_path_factory):
    """The in-process loop tests' source store: two days of the replay's real symbols (1m)."""
    return build_source(shared_data, tmp_path_factory.mktemp("replay") / "source",
                        REPLAY_SYMBOLS, 2)


@pytest.fixture
def test_keys(monkeypatch):
    """The fake testnet keys in the environment, as `live --mode testnet` reads them."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
