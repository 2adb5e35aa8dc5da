"""Engine: how decisions become trades and how trades are scored.

Owns the simulator wrappers (`simulate`: the decision step over explicit state, single symbol,
portfolio and fused sweeps), `step` (the per-bar decision API a live loop calls with a state
rebuilt from its fills) and `metrics` (return, Sharpe, drawdown, ...), on top of
`kernels/simulate.py`, `kernels/fills.py` and `kernels/metrics.py`. The backtest, the paper
broker, the emulator and the live loop all trade through what lives here. May import the
ground floor, `kernels` and `strategies`; never a driver, the store or the exchange.
"""
