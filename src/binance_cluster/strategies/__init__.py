"""Strategies: what to trade and when.

Owns the registry (`registry`: name -> signal kernel, parameter spec, warm-up length, risk
defaults) and the validating indicator wrappers (`indicators`) over `kernels.indicators`, the
one indicator family strategies and model features use. A new strategy is a signal kernel in
`kernels/signals.py` plus an entry in `registry`. May import the ground floor and `kernels`;
never the engine, a driver, the store or the exchange.
"""
