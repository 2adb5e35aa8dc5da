"""Model training speed and quality against scikit-learn and LightGBM, side by side, one core.

    python bench/bench_models.py [--symbols BTCUSDT,...] [--features small|seed] [--repeat 5]

Features and barrier labels of real 1m candles from ../shared/data (the project's feature
and label code via tests/support/model_data; --features small: a dozen close ratios,
returns, ATR range and volume z-score; seed: the seed bot's 70 close ratios; labels +1 %
before -2 % within 60 bars), pooled over the symbols, split in time per symbol (first 70 %
train, purged by the label horizon; the rest test). Every model trains from the raw
float64 matrix (binning or standardisation included), pinned to one thread. Trees: 100
rounds, learning rate 0.1, 31 leaves, 20 rows per leaf, 255 bins, no regularisation, no
early stopping. Logistic: L2 = 1 on standardised features (sklearn: StandardScaler then
LogisticRegression(C=1, newton-cholesky)). Models are fitted alternately and the best of
--repeat fits counts, timed as CPU seconds of this process (the one thread's work: on a
shared machine wall time also counts other programs; best wall time is printed beside).
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
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.model_data import SMALL_FEATURES, time_split  # noqa: E402
from support.real_data import SHARED_DATA, real_symbols  # noqa: E402

from binance_cluster.ml.features import FeatureSpec  # noqa: E402
from binance_cluster.ml.logistic import LogisticParams, fit_logistic  # noqa: E402
from binance_cluster.ml.trees import TreeParams, fit_trees  # noqa: E402
from binance_cluster.table import format_table  # noqa: E402


def sk_one(m, x):
    """scikit-learn / LightGBM probability of one row."""
    return m.predict_proba(x[None, :])[0, 1]


def sk_many(m, X):
    """scikit-learn / LightGBM probabilities of every row."""
    return m.predict_proba(X)[:, 1]


def contenders(rounds: int):
    """Groups of (name, fit(X, y), predict(model, X), predict_one(model, x)); ours first."""
    params = TreeParams(n_rounds=rounds)

    def sk_trees(X, y):
        return HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=rounds, max_leaf_nodes=31, min_samples_leaf=20,
            max_bins=255, l2_regularization=0.0, early_stopping=False, random_state=0).fit(X, y)

    def lgb_trees(X, y):
        return lightgbm.LGBMClassifier(
            n_estimators=rounds, learning_rate=0.1, num_leaves=31, max_depth=-1,
            min_child_samples=20, min_child_weight=1e-3, max_bin=255, reg_lambda=0.0,
            subsample=1.0, colsample_bytree=1.0, n_jobs=1, random_state=0,
            verbose=-1).fit(X, y)

    def sk_logistic(X, y):
        return make_pipeline(StandardScaler(), LogisticRegression(
            C=1.0, solver="newton-cholesky", tol=1e-10, max_iter=100)).fit(X, y)

    trees = [
        ("trees: ours (numba)", lambda X, y: fit_trees(X, y, params),
         lambda m, X: m.predict_proba(X), lambda m, x: m.predict_one(x)),
        (f"trees: sklearn HGB {sklearn.__version__}", sk_trees, sk_many, sk_one),
        (f"trees: LightGBM {lightgbm.__version__}", lgb_trees, sk_many, sk_one),
    ]
    logistic = [
        ("logistic: ours (numba)",
         lambda X, y: fit_logistic(X, y, LogisticParams(l2=1.0, class_weight="none")),
         lambda m, X: m.predict_proba(X), lambda m, x: m.predict_proba(x[None, :])[0]),
        (f"logistic: sklearn {sklearn.__version__}", sk_logistic, sk_many, sk_one),
    ]
    return [trees, logistic]


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
    ap.add_argument("--features", choices=("small", "seed"), default="small")
    args = ap.parse_args()
    symbols = tuple(args.symbols.split(",")) if args.symbols else tuple(real_symbols())
    spec = SMALL_FEATURES if args.features == "small" else FeatureSpec()
    X_train, y_train, X_test, y_test = time_split(SHARED_DATA, symbols, spec)
    groups = contenders(args.rounds)
    models = [m for group in groups for m in group]
    fit_trees(X_train[:2000], y_train[:2000], TreeParams(n_rounds=2))   # compile / load cache
    fit_logistic(X_train[:2000], y_train[:2000], LogisticParams())

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
        scores = {name: (roc_auc_score(y_test, predict(fitted[name], X_test)),
                         one_row_us(predict_one, fitted[name], X_test))
                  for name, _, predict, predict_one in models}

    n = X_train.shape[0]
    print(f"{len(symbols)} symbols, {n:,} training rows x {X_train.shape[1]} features "
          f"({args.features}; base rate {y_train.mean():.3f}), {X_test.shape[0]:,} test rows; "
          f"{args.rounds} rounds; best of {args.repeat} fits; one thread each")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    table = [["model", "fit cpu s", "train rows/s", "ours/peer", "fit wall s", "test AUC",
              "1-row predict us"]]
    for group in groups:
        ours_t = cpu[group[0][0]]
        for k, (name, *_) in enumerate(group):
            t = cpu[name]
            auc, us = scores[name]
            table.append([name, f"{t:.2f}", f"{n / t:,.0f}", "" if k == 0 else f"{ours_t / t:.2f}",
                          f"{wall[name]:.2f}", f"{auc:.4f}", f"{us:.1f}"])
    print(format_table(table, right=range(1, 7)))
    trees = groups[0]
    sk_ratio = cpu[trees[0][0]] / cpu[trees[1][0]]
    lgb_ratio = cpu[trees[0][0]] / cpu[trees[2][0]]
    print(f"trees goal vs sklearn (ratio <= 1): {'met' if sk_ratio <= 1 else 'NOT met'}; "
          f"vs LightGBM (ratio <= 1.5): {'met' if lgb_ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
