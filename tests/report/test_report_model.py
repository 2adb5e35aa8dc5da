"""The model report, rendered from real `train` outputs (walk-forward days on three real symbols):
its files and pages, what its figures compute from the model store and train.json, the kinds
told apart in a shared output folder, `train --report`, and bad input."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from support.report_files import check_report, pdf_pages

MODEL_FIGURES = [("roc", "tall"), ("calibration", "tall"), ("thresholds", "tall"),
                 ("importance", "tall"), ("champion", "tall"), ("folds", "tall")]


def test_read_train_summary_gives_back_train_json(trained, tmp_path):
    from binance_cluster.errors import DataError
    from binance_cluster.ml.train_results import read_train_summary

    out = trained("logistic")
    summary = read_train_summary(out)
    assert summary == json.loads((out / "train.json").read_text())
    rows = (out / "train.csv").read_text().splitlines()[1:]
    assert [(r["symbol"], r["fold"]) for r in summary["folds"]] == [tuple(r.split(",")[:2]) for r in rows]
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "train.json"))):
        read_train_summary(tmp_path)


@pytest.mark.parametrize("kind", ["logistic", "trees"])
def test_model_report_files_pages_and_sizes(cli, trained, kind):
    out = trained(kind)
    code, stdout, stderr = cli("report", out)
    assert code == 0, stderr
    assert stdout.splitlines()[-1].startswith(f"report: {out / 'report.html'}")
    check_report(out, MODEL_FIGURES)


def test_logistic_and_trees_give_different_importance_pictures(cli, trained):
    pictures = []
    for kind in ("logistic", "trees"):
        out = trained(kind)
        assert cli("report", out)[0] == 0
        pictures.append({p.name: p.read_bytes() for p in (out / "figures").glob("*.png")})
    assert all(pictures[0][n] != pictures[1][n] for n in pictures[0])


def test_figures_read_what_train_stored(trained):
    from binance_cluster.ml.model_store import ModelStore
    from binance_cluster.report.model import importance_table, load_train, traded_figures

    out = trained("logistic")
    run = load_train(out)
    store = ModelStore(run.summary["models"])
    assert list(run.records) == ["BTCUSDT", "ETHUSDT", "LAYERUSDT"]
    n_features = len(run.summary["features"])
    fitted = 0
    for symbol, recs in run.records.items():
        stored = store.records(symbol, with_arrays=True)
        assert [r.fold for r in recs] == [r.fold for r in stored]
        for rec, again in zip(recs, stored):
            for key, values in again.diagnostics.items():
                assert np.array_equal(rec.diagnostics[key], values, equal_nan=True)
            if rec.diagnostics:
                fitted += 1
                # the traded model's AUC: the challenger's when it trades, else the champion's
                figures = traded_figures(rec)
                which = "challenger" if rec.trades_with == rec.fold else "champion"
                assert figures == rec.metrics[which]
                fpr, tpr = rec.diagnostics["roc_fpr"], rec.diagnostics["roc_tpr"]
                assert fpr[-1] == tpr[-1] == 1.0       # at threshold 0 every bar is flagged
                assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    names, table = importance_table(run)
    assert names == run.summary["features"] and table.shape == (fitted, n_features)
    # logistic importance: the standardised coefficients of the model that trades
    rec = next(r for rs in run.records.values() for r in rs if r.diagnostics)
    model = store.load_model(rec.symbol, rec.trades_with)
    assert np.array_equal(rec.diagnostics["importance"], model.importance())


def test_a_backtest_after_train_in_the_same_folder_is_reported_as_the_backtest(trained, tmp_path):
    import shutil

    from binance_cluster.report import backtest, model
    from binance_cluster.report.render import build_report

    out = tmp_path / "shared"
    shutil.copytree(trained("logistic"), out)
    assert model.applies(out) and not backtest.applies(out)
    (out / "summary.json").write_text(json.dumps({"mode": "portfolio", "units": []}))
    later = os.path.getmtime(out / "train.json") + 5
    os.utime(out / "summary.json", (later, later))
    assert backtest.applies(out) and not model.applies(out)
    assert build_report(out, kind="model").title.startswith("Model report")


@pytest.mark.mpi
def test_train_report_flag_renders_on_rank_0(trained, tmp_path, mpirun):
    first = trained("logistic")
    text = (first.parent / "logistic.toml").read_text()
    text = text.replace(str(first.parent / "logistic.h5"), str(tmp_path / "m.h5"))
    text = text.replace(f'output = "{first}"', f'output = "{tmp_path / "out"}"')
    (tmp_path / "job.toml").write_text(text)
    proc = mpirun(2, "-m", "binance_cluster", "train", tmp_path / "job.toml", "--no-progress",
                  "--symbols", "BTCUSDT,ETHUSDT", "--report")
    assert proc.returncode == 0, proc.stderr
    reports = [line for line in proc.stdout.splitlines() if line.startswith("report: ")]
    assert len(reports) == 1 and str(tmp_path / "out" / "report.html") in reports[0]
    assert pdf_pages(tmp_path / "out" / "report.pdf") == len(MODEL_FIGURES)


def test_a_folder_without_train_json_names_it_and_exits_2(cli, tmp_path):
    code, _, stderr = cli("report", tmp_path, "--kind", "model")
    assert code == 2 and stderr.strip().count("\n") == 0
    assert str(tmp_path / "train.json") in stderr
    assert list(tmp_path.iterdir()) == []
