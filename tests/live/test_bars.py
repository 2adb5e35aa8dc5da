"""The live loop's bar plan: what is due after a pause, per policy, and nothing skipped silently."""

from __future__ import annotations

import pytest

from binance_cluster.live.bars import BarPlan, last_closed_open, next_close, plan_bars

M = 60_000
T = 1_746_403_200_000


def test_a_bar_is_closed_when_the_clock_reaches_its_close():
    assert last_closed_open(T + M, M) == T            # the bar opened at T closed exactly now
    assert last_closed_open(T + M - 1, M) == T - M    # one millisecond earlier it was forming
    assert next_close(T + 5, M) == T + M and next_close(T, M) == T + M
    assert last_closed_open(T + 3_600_000 + 1, 3_600_000) == T


def test_first_start_handles_only_the_newest_closed_bar():
    assert plan_bars(None, T + 10 * M + 7, M) == BarPlan((T + 9 * M,))


def test_on_time_there_is_one_bar_and_early_there_is_none():
    assert plan_bars(T, T + 2 * M + 500, M) == BarPlan((T + M,))
    assert plan_bars(T + M, T + 2 * M - 1, M) == BarPlan(())


def test_catch_up_replays_missed_bars_in_order_up_to_its_limit():
    plan = plan_bars(T, T + 6 * M + 1, M, "catch_up", max_catch_up=3)
    assert plan.handle == (T + 3 * M, T + 4 * M, T + 5 * M)
    assert [o for o, _ in plan.skipped] == [T + M, T + 2 * M]
    assert "older than the 3 bars catch_up replays" in plan.skipped[0][1]
    assert plan_bars(T, T + 6 * M + 1, M, "catch_up").handle == tuple(T + k * M for k in range(1, 6))


def test_skip_handles_the_newest_and_says_which_were_skipped():
    plan = plan_bars(T, T + 4 * M, M, "skip")
    assert plan.handle == (T + 3 * M,) and [o for o, _ in plan.skipped] == [T + M, T + 2 * M]
    assert all("missed_bars = \"skip\"" in why for _, why in plan.skipped)


def test_an_unknown_policy_is_named():
    with pytest.raises(ValueError, match="'wait'"):
        plan_bars(T, T + M, M, "wait")
