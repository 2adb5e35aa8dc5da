"""Candles: the HDF5 store and everything that fills it.

Owns the candle store (`store`, the only h5py user for candles), `importer` (Binance CSV/ZIP
files), `fetch` (download through the Binance transport), `resample` (higher intervals built
causally from 1m), `demo_data` (the synthetic demo set) and `synthetic` (a small random
walk that warm-ups run kernels on). May import the ground floor
(`types`, `errors`, `parallel`, `progress`), `kernels` and `exchange.transport`; never a
strategy, the engine or a driver.
"""
