"""Risk controls: each rule refuses at its boundary and names itself; the kill switch engages
on its file or on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from binance_cluster.errors import ConfigError
from binance_cluster.live.risk import AccountView, KillSwitch, RiskLimits, check_entry

D = Decimal
LIMITS = RiskLimits(max_order_notional=D("500"), max_open_positions=2, max_exposure=D("900"),
                    max_daily_loss=D("100"))
CALM = AccountView(open_positions=1, exposure=D("400"), day_pnl=D("-99.99"))


def rule(notional="500", account=CALM, killed=False, limits=LIMITS):
    refusal = check_entry("BTCUSDT", D(notional), limits, account, killed)
    return None if refusal is None else refusal.rule


def test_each_rule_refuses_exactly_past_its_limit():
    assert rule("500") is None                                  # every limit reached, none passed
    assert rule("500.01") == "max_order_notional"
    assert rule(account=AccountView(2, D("400"), D("0"))) == "max_open_positions"
    assert rule("500", AccountView(1, D("400.01"), D("0"))) == "max_exposure"
    assert rule(account=AccountView(1, D("0"), D("-100"))) == "max_daily_loss"
    assert rule(killed=True) == "kill_switch"
    assert rule("1e9", AccountView(99, D("1e9"), D("-1e9")), limits=RiskLimits()) is None  # paper: no limits


def test_a_refusal_says_why_in_one_line():
    refusal = check_entry("ETHUSDT", D("600"), LIMITS, CALM, False)
    assert refusal.detail == "ETHUSDT: order of 600 above the limit 500"


def test_live_needs_every_limit_and_limits_must_be_positive():
    assert RiskLimits().missing() == ["max_order_notional", "max_open_positions", "max_exposure",
                                      "max_daily_loss"]
    assert LIMITS.missing() == []
    with pytest.raises(ConfigError, match="live.risk.max_exposure: 0 must be above zero"):
        RiskLimits(max_exposure=D("0"))


def test_the_kill_switch_engages_on_its_file(tmp_path):
    switch = KillSwitch(tmp_path / "STOP")
    assert not switch.engaged and switch.reason == "not engaged"
    (tmp_path / "STOP").touch()
    assert switch.engaged and "STOP exists" in switch.reason


def test_the_kill_switch_engages_on_sigterm_and_the_process_goes_on():
    script = textwrap.dedent("""
        import os, signal, time
        from binance_cluster.live.risk import KillSwitch
        switch = KillSwitch()
        switch.install()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if switch.engaged:
                break
            time.sleep(0.01)
        print(switch.engaged, switch.reason)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "True SIGTERM received", proc.stderr
