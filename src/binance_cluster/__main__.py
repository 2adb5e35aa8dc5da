"""`python -m binance_cluster` runs the command line."""

from binance_cluster.cli import main

raise SystemExit(main())
