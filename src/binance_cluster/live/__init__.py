"""Live: trading the job that was backtested, on paper, testnet or a real account.

Owns the live loop's records and controls: `journal` (the SQLite journal on rank 0: order
intents before they are sent, exchange answers, fills, decisions, risk refusals, bar
latencies; positions derived from fills). The loop, the reconciliation at start-up and the
risk controls come next (issue: live mode under mpirun). May import the ground floor,
`kernels`, `strategies`, `engine`, `candles` and `exchange`; rank 0 alone opens the journal
and talks to the broker.
"""
