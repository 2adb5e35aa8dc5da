"""Models: features, barrier labels, logistic regression, the model store, walk-forward training.

Owns the model side of the ML strategy (SEEDS.md B without its train/serve skew and label bug):
`features` / `labels` (validating wrappers over kernels/features.py and kernels/labels.py),
`logistic` (the model over kernels/logistic.py), `models` (the registry of model kinds),
`model_store` (HDF5 model files; the only h5py user for models, loading never unpickles),
`folds`, `thresholds`, `evaluate` (walk-forward periods, threshold rules, metrics and
diagnostics), `job` and `train` (the `train` command's job and MPI driver), `train_results`
(train.json and train.csv, written and read) and `serve`
(models handed to the `ml_barrier` strategy in a backtest).

May import: the ground floor (types, errors, log, progress, fileio, jobfile, parallel),
kernels/, candles/, backtest/job (the shared job sections), backtest/driver.load_candles and
backtest/results (file helpers). Never imports strategies/ or report/.
"""
