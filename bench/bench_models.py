"""Model training speed and quality against scikit-learn and LightGBM, side by side, one core.

    python bench/bench_models.py [--symbols BTCUSDT,ETHUSDT,...] [--repeat 3] [--rounds 100]

Features and barrier labels of real 1m candles from ../shared/data (tests/support/model_data:
8 causal features, +1 % before -2 % within 60 bars), pooled over the symbols, split in time
per symbol (first 70 % train, purged by the label horizon; the rest test). Every model
trains from the raw float64 matrix (binning included) with the same settings (100 rounds,
learning rate 0.1, 31 leaves, 20 rows per leaf, 255 bins, no regularisation, no early
stopping), all pinned to one thread. Models are fitted alternately and the best of --repeat
fits counts, timed as CPU seconds of this process (the one thread's work: on a shared
machine wall time also counts other programs; best wall time is printed beside).
Goals: our trees at least as fast as scikit-learn's HistGradientBoostingClassifier
(ratio <= 1) and within 1.5x of LightGBM (ratio <= 1.5).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import lightgbm  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.model_data import time_split  # noqa: E402
from support.real_data import SHARED_DATA, real_symbols  # noqa: E402

from binance_cluster.ml.trees import TreeParams, fit_trees  # noqa: E402
from binance_cluster.table import format_table  # noqa: E402


def contenders(rounds: int):
    """(name, fit(X, y) -> model, predict(model, X) -> P(y = 1)) for every model compared."""
    params = TreeParams(n_rounds=rounds)

    def ours(X, y):
        return fit_trees(X, y, params)

    def sk(X, y):
        return HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=rounds, max_leaf_nodes=31, min_samples_leaf=20,
            max_bins=255, l2_regularization=0.0, early_stopping=False, random_state=0).fit(X, y)

    def lgb(X, y):
        return lightgbm.LGBMClassifier(
            n_estimators=rounds, learning_rate=0.1, num_leaves=31, max_depth=-1,
            min_child_samples=20, min_child_weight=1e-3, max_bin=255, reg_lambda=0.0,
            subsample=1.0, colsample_bytree=1.0, n_jobs=1, random_state=0,
            verbose=-1).fit(X, y)

    return [
        ("ours (numba)", ours, lambda m, X: m.predict_proba(X), lambda m, x: m.predict_one(x)),
        (f"sklearn HGB {sklearn.__version__}", sk, lambda m, X: m.predict_proba(X)[:, 1],
         lambda m, x: m.predict_proba(x[None, :])[0, 1]),
        (f"LightGBM {lightgbm.__version__}", lgb, lambda m, X: m.predict_proba(X)[:, 1],
         lambda m, x: m.predict_proba(x[None, :])[0, 1]),
    ]


def one_row_us(predict_one, model, X: np.ndarray, rows: int = 200) -> float:
    """Median microseconds to predict one row (the live loop's newest bar)."""
    times = []
    for x in X[:rows]:
        t = time.perf_counter()
        predict_one(model, x)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", default="", help="comma-separated (default: all 16)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    symbols = tuple(args.symbols.split(",")) if args.symbols else tuple(real_symbols())
    X_train, y_train, X_test, y_test = time_split(SHARED_DATA, symbols)
    models = contenders(args.rounds)
    fit_trees(X_train[:2000], y_train[:2000], TreeParams(n_rounds=2))   # compile / load cache

    cpu = {name: np.inf for name, *_ in models}
    wall = dict(cpu)
    fitted = {}
    with threadpool_limits(limits=1):
        for _ in range(args.repeat):
            for name, fit, _, _ in models:
                c, t = time.process_time(), time.perf_counter()
                fitted[name] = fit(X_train, y_train)
                cpu[name] = min(cpu[name], time.process_time() - c)
                wall[name] = min(wall[name], time.perf_counter() - t)
        rows = []
        for name, _, predict, predict_one in models:
            auc = roc_auc_score(y_test, predict(fitted[name], X_test))
            rows.append((name, cpu[name], wall[name], auc,
                         one_row_us(predict_one, fitted[name], X_test)))

    n = X_train.shape[0]
    print(f"{len(symbols)} symbols, {n:,} training rows x {X_train.shape[1]} features "
          f"(base rate {y_train.mean():.3f}), {X_test.shape[0]:,} test rows; {args.rounds} "
          f"rounds; best of {args.repeat} fits; one thread each")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    ours_t = rows[0][1]
    table = [["model", "fit cpu s", "train rows/s", "ours/peer", "fit wall s", "test AUC",
              "1-row predict us"]]
    for k, (name, t, w, auc, us) in enumerate(rows):
        table.append([name, f"{t:.2f}", f"{n / t:,.0f}", "" if k == 0 else f"{ours_t / t:.2f}",
                      f"{w:.2f}", f"{auc:.4f}", f"{us:.1f}"])
    print(format_table(table, right=range(1, 7)))
    sk_ratio, lgb_ratio = ours_t / rows[1][1], ours_t / rows[2][1]
    print(f"goal vs sklearn (ratio <= 1): {'met' if sk_ratio <= 1 else 'NOT met'}; "
          f"goal vs LightGBM (ratio <= 1.5): {'met' if lgb_ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
