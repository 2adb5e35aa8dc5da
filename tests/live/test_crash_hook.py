"""The crash-and-restart test's hook (live/crash.py): with BINANCE_CLUSTER_CRASH_AT=POINT:N the
process SIGKILLs itself the N-th time it passes POINT, and does nothing without it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

PASSES = ("from binance_cluster.live.crash import crash_point\n"
          "for k in range(1, 6):\n"
          "    crash_point('after-send')\n"
          "    crash_point('before-send')\n"
          "    print(k, flush=True)\n")


def run(value: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("BINANCE_CLUSTER_CRASH_AT", None)
    if value is not None:
        env["BINANCE_CLUSTER_CRASH_AT"] = value
    return subprocess.run([sys.executable, "-c", PASSES], capture_output=True, text=True,
                          env=env, timeout=60)


def test_the_process_kills_itself_at_the_nth_pass_of_the_point():
    done = run("before-send:3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2"]


def test_without_the_variable_or_at_another_point_nothing_happens():
    assert run(None).stdout.split() == ["1", "2", "3", "4", "5"]
    assert run("after-fill:1").stdout.split() == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("value", ["before-send", "nowhere:1", "after-send:0"])
def test_a_bad_value_is_an_error(value):
    done = run(value)
    assert done.returncode == 1 and "BINANCE_CLUSTER_CRASH_AT" in done.stderr
