"""Test support: real-data readers, stores, emulator and broker fixtures, reference oracles.

`tests` is on pytest's path (setup.cfg), so tests import these as `support.NAME`.
"""
