"""`warm-up JOB` compiles exactly what the job runs, into the cache NUMBA_CACHE_DIR names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support.backtest_store import build_store, write_job


def test_warm_up_of_a_job_warms_exactly_its_strategy_mode_and_interval(shared_data, tmp_path):
    build_store(shared_data, tmp_path / "store", symbols=("BTCUSDT",))
    job = write_job(tmp_path / "job.toml", f"""
store = "{tmp_path / 'store'}"
symbols = ["BTCUSDT"]
interval = "5m"
mode = "portfolio"
[strategy]
name = "ema_cross"
""")
    cache = tmp_path / "cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "binance_cluster", "warm-up", str(job)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "warming the kernels of ema_cross (portfolio)" in proc.stdout
    assert "warmed 1 strategy/interval pairs" in proc.stdout and "(ema_cross 5m)" in proc.stdout
    stamps = list(cache.glob("binance-cluster-warm-*.json"))
    assert len(stamps) == 1 and json.loads(stamps[0].read_text())["warm"] == ["ema_cross:portfolio:5m"]


def test_warm_up_takes_a_job_or_strategies_not_both(tmp_path, cli):
    code, _, err = cli("warm-up", tmp_path / "missing.toml")
    assert code == 2 and "missing.toml: job file not found" in err
    job = write_job(tmp_path / "job.toml", 'store = "x"\n')
    code, _, err = cli("warm-up", job, "--strategies", "sma_cross")
    assert code == 2 and "a job file or --strategies, not both" in err


def _cache_files(cache):
    """numba's cache files (index and machine code) with their modification times."""
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_a_backtest_after_warm_up_compiles_nothing_more_and_rank_0_says_when_it_compiles(
        shared_data, tmp_path):
    build_store(shared_data, tmp_path / "store", symbols=("BTCUSDT", "ETHUSDT"))
    job = write_job(tmp_path / "job.toml", f"""
store = "{tmp_path / 'store'}"
symbols = ["BTCUSDT", "ETHUSDT"]
output = "{tmp_path / 'out'}"
top = 3
[strategy]
name = "sma_cross"
[strategy.params]
fast = [5, 10]
slow = [30, 60]
[risk]
stop_loss = 0.02
""")
    cache = tmp_path / "cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "binance_cluster", *args, str(job)],
                              capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr
        return proc

    run("warm-up")
    warmed = _cache_files(cache)
    assert warmed
    proc = run("backtest", "--no-progress")
    assert _cache_files(cache) == warmed            # nothing compiled, nothing rewritten
    assert "compiling" not in proc.stderr
    for stamp in cache.glob("binance-cluster-warm-*.json"):
        stamp.unlink()                              # this host's cache no longer known warm
    proc = run("backtest", "--no-progress")
    assert "compiling the numba kernels of sma_cross (sweep, 1m)" in proc.stderr
    assert "kernels ready in" in proc.stderr
    assert _cache_files(cache) == warmed


_SIGNATURES = """
import importlib, json
from numba.core.registry import CPUDispatcher
from binance_cluster.backtest.warmup import warm_up
warm_up(["sma_cross"])
counts = {}
for mod in ("simulate", "signals", "indicators", "fills", "metrics"):
    m = importlib.import_module("binance_cluster.kernels." + mod)
    for name, obj in vars(m).items():
        if isinstance(obj, CPUDispatcher) and obj.__module__ == m.__name__ and obj.signatures:
            counts[mod + "." + name] = [str(s) for s in obj.signatures]
print(json.dumps(counts))
"""


def test_a_warm_up_compiles_each_kernel_it_runs_once(tmp_path):
    # Literal arguments at some call sites (0, True, a reason constant) and variables at
    # others compiled a helper, and everything it calls, once per combination. An empty
    # cache: kernels loaded from it do not load (or list) the helpers they call.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", _SIGNATURES], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.splitlines()[-1])
    assert {"simulate.step", "simulate._sell", "simulate.codes_pass", "simulate.sweep_cross",
            "signals.cross_step"} <= set(counts)
    assert {name: sigs for name, sigs in counts.items() if len(sigs) > 1} == {}


def test_two_checkouts_sharing_one_cache_keep_their_own_stamps(tmp_path, monkeypatch):
    # numba keys its cache files on the source path, so two checkouts can share one
    # NUMBA_CACHE_DIR; a stamp shared by both was rewritten by each, voiding the other's.
    import shutil

    from binance_cluster.kernels import cache

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("numba.core.config.CACHE_DIR", str(tmp_path / "cache"))
    here = cache.KERNELS_DIR
    other = tmp_path / "other" / "kernels"
    shutil.copytree(here, other, ignore=shutil.ignore_patterns("__pycache__"))
    (other / "simulate.py").write_text((here / "simulate.py").read_text() + "\n# edited\n")
    cache.mark_warm(["sma_cross:sweep:1m"])
    monkeypatch.setattr(cache, "KERNELS_DIR", other)
    assert not cache.is_warm(["sma_cross:sweep:1m"])       # its sources differ
    cache.mark_warm(["ema_cross:sweep:1m"])
    assert cache.is_warm(["ema_cross:sweep:1m"])
    monkeypatch.setattr(cache, "KERNELS_DIR", here)
    assert cache.is_warm(["sma_cross:sweep:1m"])           # still warm for the first checkout
    assert not cache.is_warm(["ema_cross:sweep:1m"])
    assert len(list((tmp_path / "cache").glob("binance-cluster-warm-*.json"))) == 2
