"""Laws: each family's fitted law, backtest and interval (corpus browser pages and the laws API)."""
