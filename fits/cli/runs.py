"""``python -m fits runs``: runs from TensorBoard, W&B or MLflow as a canonical runs CSV.

    python -m fits runs DIR --metric TAG --tokens-per-step K --params-file P.csv --csv OUT
    python -m fits runs export.csv --format wandb --metric train/loss --tokens-column train/tokens_seen ...

The summary (runs imported, values skipped and why) goes to stderr; bad input is one message on
stderr and exit status 2, as for every ``python -m fits`` command.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..trackers import ImportLimits, RunsImportError, read_runs
from ..trackers.core import SOURCES
from .common import EXIT_BAD_INPUT, positive_int, positive_number

def add_commands(sub) -> None:
    """Add ``runs`` to ``python -m fits``'s sub-commands (``sub``: its argparse sub-parsers)."""
    p = sub.add_parser("runs", help="import runs from TensorBoard, W&B or MLflow into a canonical runs CSV",
                       description="Read a TensorBoard log directory (one sub-directory per run), W&B exports or "
                                   "MLflow metric histories / an mlruns store (a directory, a .zip or .tar.gz of "
                                   "one, or files) and write the canonical runs table: model = run name, tokens = "
                                   "step x K (or the tokens series), value = the metric.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",  # text: an MLflow URI is no path
                   help="a directory, a .zip / .tar(.gz) of one, export files, or an MLflow tracking URI")
    p.add_argument("--metric", required=True, metavar="TAG", help="the scalar tag / metric / column that is the loss")
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument("--tokens-per-step", type=positive_number, metavar="K",
                        help="tokens = step x K (per run: a tokens_per_step column in the params file)")
    tokens.add_argument("--tokens-column", metavar="NAME", help="a logged series giving the tokens seen at each step")
    p.add_argument("--params-file", type=Path, metavar="P",
                   help="CSV with columns run,params (optionally tokens_per_step, run_tokens, run_steps), or JSON "
                        "{run: params}; runs it does not list use their tracker config")
    p.add_argument("--params-key", metavar="KEY", help="the config / params key holding the parameter count")
    p.add_argument("--format", dest="source", choices=("auto", *SOURCES), default="auto",
                   help="what INPUT is (default: found from the files)")
    p.add_argument("--runs", nargs="+", metavar="RUN", help="import only these runs")
    p.add_argument("--experiment", help="MLflow: only this experiment (name or id)")
    p.add_argument("--step-column", metavar="NAME", help="W&B: the step column when not _step / Step")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write the runs CSV here (default: standard output)")
    p.add_argument("--report", type=Path, metavar="OUT.json", help="write the full report as JSON here")
    p.add_argument("--max-rows", type=positive_int, default=ImportLimits.max_rows,
                   help=f"most values to read (default {ImportLimits.max_rows})")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    try:
        return _run(args)
    except RunsImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args) -> int:
    inputs = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
    result = read_runs(inputs, metric=args.metric, source=args.source, tokens_per_step=args.tokens_per_step,
                       tokens_column=args.tokens_column, params=args.params_file, params_key=args.params_key,
                       runs=args.runs, experiment=args.experiment, step_column=args.step_column,
                       limits=ImportLimits(max_rows=args.max_rows))
    try:
        if args.csv is None:
            result.frame.to_csv(sys.stdout, index=False)
        else:
            result.frame.to_csv(args.csv, index=False)
        if args.report is not None:
            args.report.write_text(json.dumps(result.report.to_dict(), indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise RunsImportError(f"cannot write: {exc.strerror or exc}", path=exc.filename or args.csv,
                              field="output") from None
    if not args.quiet:
        for line in result.report.lines():
            print(line, file=sys.stderr)
        if args.csv is not None:
            print(f"wrote {len(result.frame)} rows to {args.csv}", file=sys.stderr)
    return 0
