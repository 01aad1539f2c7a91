"""``python -m fits``: backtest, sweep and fit on a canonical corpus CSV, no Django needed.

    python -m fits backtest CORPUS... [--families F...] [--json OUT] [--compare]        (cli/backtest.py)
    python -m fits fit CORPUS --family NAME [--target-params N --target-tokens D] [--plot OUT]
    python -m fits sweep CORPUS... [--families F...] [--jobs N] [--json OUT] [--csv OUT]  (cli/sweeps.py)
    python -m fits calibrate --train T... [--test X...] [--json OUT] [--save-model M.json]
    python -m fits evaluate-plans --train T... [--test X...] [--json OUT]
    python -m fits plan --error-model M.json --target-params N --target-tokens D --budget-fraction F [--json OUT]
                        [--csv OUT] [--template OUT] [--plot OUT.png]                   (cli/plan.py)
    python -m fits runs DIR --metric TAG --tokens-per-step K --params-file P.csv [--csv OUT]  (cli/runs.py)

Bad input (a missing file, an invalid corpus, an unknown family, a bad number)
is one message on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from ..trainset import FitInputError
from . import advise, backtest, plan, runs, sweeps
from .common import EXIT_BAD_INPUT, CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fits", description="scaleplan's scaling-law engine")
    sub = parser.add_subparsers(dest="command", required=True)
    backtest.add_commands(sub)
    sweeps.add_commands(sub)
    plan.add_commands(sub)
    advise.add_commands(sub)  # `advise`, `progress`: next-run advice, the prediction as runs advance
    runs.add_commands(sub)  # `runs`: TensorBoard / W&B / MLflow -> a canonical runs CSV
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on a bad flag or number
    try:
        return args.func(args)
    except (CliError, FitInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
