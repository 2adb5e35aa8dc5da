"""Shared fixtures: the real data folder, temporary stores, the CLI in-process and under mpirun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.real_data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data/binance-usdm-1m`: required in CI (fail), optional elsewhere (skip)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data folder {SHARED_DATA} is missing (it must exist in CI)")
        pytest.skip(f"real data folder {SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """An empty directory for a candle store."""
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def cli(capsys):
    """Run `binance-cluster ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from binance_cluster.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def mpirun_command(n: int, *args: str) -> list[str]:
    """`mpirun -n N python -m binance_cluster ARGS...` with the venv's mpirun."""
    mpirun = BIN / "mpirun"
    if not mpirun.exists():
        raise RuntimeError(f"{mpirun} missing: install the mpich wheel (pip install mpich)")
    return [str(mpirun), "-n", str(n), sys.executable, *args]


@pytest.fixture
def mpirun():
    """Run a Python command line under real `mpirun -n N`; returns CompletedProcess (text)."""

    def run(n: int, *args: str, timeout: float = 300, env: dict | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(mpirun_command(n, *[str(a) for a in args]), capture_output=True,
                              text=True, timeout=timeout, env=full_env, cwd=cwd)

    return run
