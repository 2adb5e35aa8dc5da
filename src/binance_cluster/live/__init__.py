"""Live: trading the job that was backtested, on paper, testnet or a real account.

Owns the live loop and its records and controls: `job` (the backtest job plus its `[live]`
table), `venue` (the composition root: picks the broker for the mode and alone reads the keys,
on rank 0), `loop` (one pass per closed bar: every rank fetches and scores its symbols, rank 0
decides with the backtest's step and trades), `state` (the decision state rebuilt from the
journal's fills and the broker's balances), `journal` (the SQLite journal on rank 0: order
intents before they are sent, exchange answers, fills, decisions, risk refusals, bar
latencies; positions derived from fills), `risk` (the limits checked before every order, the
kill switch), `bars` (which closed bars are due after a pause, per the missed-bars policy),
`reconcile` (at start-up, and before each bar for orders whose outcome was unknown: what a
crash left unknown is queried by client id, never re-sent blindly), `exits` (protective
exits at the backtest's levels: what rests on the exchange, its replacement, bot-managed
checks, and their restoration at start-up), `orders` (the one path an order takes: journaled
before it is sent, a journaled one asked for by its client id first) and `crash` (the crash-and-restart test's hook:
SIGKILL at a named point of the order path, inert unless its variable is set).

May import the ground floor, `kernels`, `strategies`, `engine`, `candles`, `exchange`, `ml`
(the model store ml_barrier trades) and `backtest.job` (the job it extends);
rank 0 alone opens the journal and talks to the broker.
"""
