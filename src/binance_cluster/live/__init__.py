"""Live: trading the job that was backtested, on paper, testnet or a real account.

Owns the live loop's records and controls: `journal` (the SQLite journal on rank 0: order
intents before they are sent, exchange answers, fills, decisions, risk refusals, bar
latencies; positions derived from fills), `risk` (the limits checked before every order, the
kill switch), `bars` (which closed bars are due after a pause, per the missed-bars policy),
`reconcile` (at start-up: what a crash left unknown is queried by client id, never
re-sent blindly) and `exits` (protective exits at the backtest's levels: what rests on the
exchange, its replacement, bot-managed checks, and their restoration at start-up). The loop
itself comes next (issue: live mode under mpirun).

May import the ground floor, `kernels`, `strategies`, `engine`, `candles` and `exchange`;
rank 0 alone opens the journal and talks to the broker.
"""
