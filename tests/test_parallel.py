"""The MPI layer: partitioning, error capture, on_root, abort; the same tests at 1, 2 and 3 ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binance_cluster.errors import ConfigError
from binance_cluster.parallel import SerialComm, map_units, on_root, partition

SCRIPTS = Path(__file__).parent / "mpi_scripts"


def test_partition_is_deterministic_complete_and_balanced():
    costs = [5, 1, 9, 3, 3, 7, 2, 8, 1, 4]
    for size in (1, 2, 3, 4, 16):
        shares = partition(costs, size)
        assert shares == partition(costs, size)
        assert sorted(i for s in shares for i in s) == list(range(len(costs)))
        assert all(s == sorted(s) for s in shares)
        loads = [sum(costs[i] for i in s) for s in shares]
        if size <= len(costs):
            assert max(loads) - min(loads) <= max(costs)
    assert partition([], 3) == [[], [], []]
    with pytest.raises(ValueError):
        partition([1], 0)


def test_map_units_serial_captures_errors_in_order():
    seen = []

    def fn(u):
        if u == 2:
            raise ConfigError("unit two: key 'x' is unknown")
        return u * 10

    results = map_units(SerialComm(), [0, 1, 2, 3], fn, names=list("abcd"),
                        progress=lambda r: seen.append(r.name))
    assert [r.value for r in results] == [0, 10, None, 30]
    assert results[2].error == "unit two: key 'x' is unknown" and not results[2].ok
    assert sorted(seen) == list("abcd")


def test_on_root_serial_raises_the_original_error():
    assert on_root(SerialComm(), lambda: 5) == 5
    with pytest.raises(ConfigError, match="bad key"):
        on_root(SerialComm(), lambda: (_ for _ in ()).throw(ConfigError("bad key")))


def expected_results(n: int) -> list:
    out = []
    for u in range(n):
        if u % 7 == 3:
            out.append([u, f"u{u}", None, f"ValueError: unit {u} is bad"])
        else:
            out.append([u, f"u{u}", sum(k * k for k in range(u * 1000)), None])
    return out


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_map_units_under_mpirun(mpirun, ranks):
    proc = mpirun(ranks, str(SCRIPTS / "map_check.py"), "17", timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["size"] == ranks
    assert out["ranks"] == list(range(ranks))
    assert out["config"] == {"answer": 42}
    assert out["news"] == [[{"bar": 0}, {"bar": 1}, {"bar": 2}]] * ranks   # quiet_bcast, in order
    assert out["results"] == expected_results(17)
    assert out["progress"] == list(range(17))
    assert out["worked_on"] == list(range(ranks))
    # on_result: every value reached rank 0 as its unit finished; the list holds none
    assert out["streamed"] == expected_results(17)
    assert out["bare"] == [[u, None, e] for u, _, _, e in expected_results(17)]
    if ranks > 1:  # worker failures are logged with their rank
        assert f"[rank " in proc.stderr and "failed: ValueError" in proc.stderr


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_fatal_error_on_one_rank_aborts_all(mpirun, ranks):
    proc = mpirun(ranks, str(SCRIPTS / "fatal.py"), "worker-fails", timeout=60)
    assert proc.returncode != 0
    assert "binance-cluster [rank 1]: error: rank one found a bad file" in proc.stderr


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_input_error_validated_at_root_exits_2_everywhere(mpirun, ranks):
    proc = mpirun(ranks, str(SCRIPTS / "fatal.py"), "root-validates", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("error: job.toml: key 'x' is unknown") == 1


def test_raise_failures_names_every_failed_unit():
    from binance_cluster.errors import UnitError
    from binance_cluster.parallel import UnitResult, raise_failures

    ok = UnitResult(0, "BTCUSDT", value=1)
    raise_failures([ok], "symbols")  # nothing failed: no error
    bad = [ok, UnitResult(1, "ETHUSDT", error="conflict at 17\ntrace"), UnitResult(2, "SOLUSDT", error="x")]
    with pytest.raises(UnitError, match=r"^2 of 3 symbols failed: ETHUSDT: conflict at 17; SOLUSDT: x$"):
        raise_failures(bad, "symbols")
