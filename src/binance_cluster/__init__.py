"""binance-cluster: MPI trading and backtesting of Binance spot markets."""

__version__ = "0.1.0"
