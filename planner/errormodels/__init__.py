"""The error model: sweeps of backtested designs over the corpus (split into per-family tasks) and versioned artifacts."""
