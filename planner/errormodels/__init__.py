"""The error model: sweeps of backtested designs (one task per family) and versioned artifacts."""
