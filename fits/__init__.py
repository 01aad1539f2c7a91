"""scaleplan's scaling-law engine: a pure library (numpy, scipy, pandas; never Django)."""
