"""``python -m fits advise`` and ``python -m fits progress``: next-run advice and the prediction as runs advance.

    python -m fits advise RUNS.csv --target-params N --target-tokens D --budget-flops B [--error-model M.json]
                                   [--max-runs K] [--json OUT]
    python -m fits progress RUNS.csv --target-params N --target-tokens D [--by share|tokens] [--points P]
                                     [--plot OUT.png] [--json OUT]

RUNS.csv is a runs table ("Runs for a prediction" in CORPUS_FORMAT.md: ``model, params, tokens, value``;
optional ``seed``, ``epochs``, ``run_tokens``, ``metric``, ``family``), as ``python -m fits runs`` writes it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..advice import MAX_RUNS, AdviceInputError, advise
from ..errormodel import ErrorModel
from ..progress import AXES, DEFAULT_N_BOOT, DEFAULT_POINTS, MAX_POINTS, prediction_history
from ..trainset import REQUIRED_COLUMNS, TrainSet
from .common import CliError, fraction, pct, positive_int, positive_number, write_json

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def read_runs_file(path: Path, metric: str | None = None) -> pd.DataFrame:
    """One family's runs of one metric from a runs CSV, validated (errors name the column and row)."""
    if not path.is_file():
        raise CliError(f"runs file not found: {path}")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"model": str, "seed": str})
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise CliError(f"{path}: missing column(s) {', '.join(missing)}; a runs file needs "
                       f"{', '.join(REQUIRED_COLUMNS)}")
    if "family" in frame.columns and frame["family"].nunique() > 1:
        raise CliError(f"{path}: {frame['family'].nunique()} families; give one family's runs")
    if "metric" in frame.columns:
        metrics = sorted(frame["metric"].dropna().astype(str).unique())
        if metric is not None:
            if metric not in metrics:
                raise CliError(f"{path}: no rows of metric {metric!r}; it has {', '.join(metrics)}")
            frame = frame[frame["metric"].astype(str) == metric]
        elif len(metrics) > 1:
            raise CliError(f"{path}: several metrics ({', '.join(metrics)}); pick one with --metric")
    elif metric is not None:
        raise CliError(f"{path}: no metric column, so --metric {metric!r} cannot be applied")
    if "seed" in frame.columns:
        frame["seed"] = frame["seed"].fillna("")
    TrainSet.from_frame(frame)  # FitInputError names the column and row
    return frame.reset_index(drop=True)


def _check_output(path: Path | None, suffixes=None) -> None:
    if path is None:
        return
    if suffixes and path.suffix.lower() not in suffixes:
        raise CliError(f"{path.name!r} must end in {', '.join(suffixes)}")
    if not path.parent.is_dir():
        raise CliError(f"cannot write {path}: no directory {path.parent}")


def _load_model(path: Path | None) -> ErrorModel | None:
    if path is None:
        return None
    try:
        return ErrorModel.from_dict(json.loads(path.read_text()))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, another version, a missing key
        raise CliError(f"{path}: not an error model of this library ({exc}); save one with "
                       "`python -m fits calibrate --save-model`") from None


def _band(figures: dict) -> str:
    return f"p50 {pct(figures['p50'])} (p10 {pct(figures['p10'])}, p90 {pct(figures['p90'])})"


def cmd_advise(args) -> int:
    _check_output(args.json)
    model = _load_model(args.error_model)
    runs = read_runs_file(args.runs, args.metric)
    try:
        advice = advise(runs, args.target_params, args.target_tokens, args.budget_flops, error_model=model,
                        max_runs=args.max_runs, n_boot=args.n_boot, seed=args.seed)
    except AdviceInputError as exc:
        raise CliError(str(exc)) from None
    cur = advice.current
    print(f"runs so far: {cur['n_runs']} runs of {len(cur['sizes'])} sizes "
          f"({min(cur['sizes']):.3g}-{max(cur['sizes']):.3g} parameters), scale-up to the target "
          f"{cur['scale_up']:.3g}x; method {cur['method']}, law {cur['law']}, predicted loss {cur['prediction']:.4f}")
    print(f"evidence: {advice.expected_are['evidence']}")
    print(f"expected ARE now:   {_band(advice.expected_are['now'])}")
    for i, run in enumerate(advice.runs, 1):
        print(f"advised run {i}: {run['params']:.3g} parameters on {run['tokens']:.3g} tokens "
              f"({run['flops']:.3g} FLOPs); evaluate every {run['evaluate_every_tokens']:.3g} tokens "
              f"({run['checkpoints']} evaluations; the fit drops those before {run['drop_before_tokens']:.3g})")
    print(f"expected ARE after: {_band(advice.expected_are['after'])}")
    for reason in advice.reasons:
        print(f"  - {reason}")
    if advice.runner_ups:
        print("runner-ups:")
        for c in advice.runner_ups:
            print(f"  {c['params']:.3g} parameters on {c['tokens']:.3g} tokens: {_band(c['expected_are_after'])}")
    for warning in advice.warnings:
        print(f"warning: {warning}")
    if args.json:
        write_json(args.json, advice.to_dict())
    return 0


def cmd_progress(args) -> int:
    _check_output(args.json)
    _check_output(args.plot, PLOT_SUFFIXES)
    model = _load_model(args.error_model)
    runs = read_runs_file(args.runs, args.metric)
    history = prediction_history(runs, args.target_params, args.target_tokens, by=args.by, points=args.points,
                                 coverage=args.coverage, n_boot=args.n_boot, seed=args.seed, error_model=model)
    axis = {"share": "% planned", "tokens": "tokens"}[history.axis]
    header = f"{'as of (' + axis + ')':>20} {'seen':>6} {'sizes':>5} {'predicted':>9} {'lower':>8} {'upper':>8} method"
    source = "the error model's fit level" if model is not None else "a run-level bootstrap and the extrapolation error"
    print(f"target N={args.target_params:.4g}, D={args.target_tokens:.4g}; {history.coverage:.0%} intervals from "
          f"{source}")
    print(header)
    for row in history.table.itertuples():
        as_of = f"{100 * row.as_of:.1f}" if history.axis == "share" else f"{row.as_of:.4g}"
        if row.error:
            print(f"{as_of:>20} {100 * row.share_seen:>5.1f}% {row.n_sizes:>5}  {row.error}")
            continue
        print(f"{as_of:>20} {100 * row.share_seen:>5.1f}% {row.n_sizes:>5} {row.prediction:>9.4f} "
              f"{row.lower:>8.4f} {row.upper:>8.4f} {row.method}")
    print(history.message)
    if args.plot:
        try:
            history.figure().savefig(args.plot, dpi=120)
        except OSError as exc:
            raise CliError(f"cannot write {args.plot}: {exc}") from None
        print(f"plot: {args.plot}")
    if args.json:
        write_json(args.json, history.to_dict())
    return 0


def _common(p) -> None:
    p.add_argument("runs", type=Path, metavar="RUNS.csv", help="runs table: model, params, tokens, value "
                                                               "(optional seed, epochs, run_tokens, metric)")
    p.add_argument("--target-params", type=positive_number, required=True, metavar="N")
    p.add_argument("--target-tokens", type=positive_number, required=True, metavar="D")
    p.add_argument("--metric", help="the metric to use when the file holds several")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--error-model", type=Path, metavar="M.json",
                   help="an error model (`python -m fits calibrate --save-model`)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the result as JSON here")


def add_commands(sub) -> None:
    p = sub.add_parser("advise", help="which run to train next, and the expected ARE now and after it")
    _common(p)
    p.add_argument("--budget-flops", type=positive_number, required=True, metavar="B",
                   help="FLOPs still free for new runs")
    p.add_argument("--max-runs", type=positive_int, default=1, choices=range(1, MAX_RUNS + 1), metavar="K",
                   help=f"advise up to K runs (1-{MAX_RUNS}), each as if the earlier ones were done")
    p.add_argument("--n-boot", type=positive_int, default=16, help="bootstrap replicates per candidate run")
    p.set_defaults(func=cmd_advise)

    p = sub.add_parser("progress", help="the target's prediction and interval as the runs advanced")
    _common(p)
    p.add_argument("--by", choices=AXES, default="share",
                   help="as-of axis: share of each run's planned tokens (default) or tokens seen")
    p.add_argument("--points", type=positive_int, default=DEFAULT_POINTS, choices=range(1, MAX_POINTS + 1),
                   metavar="P", help=f"as-of points (1-{MAX_POINTS}, default {DEFAULT_POINTS})")
    p.add_argument("--coverage", type=fraction, default=0.8)
    p.add_argument("--n-boot", type=positive_int, default=DEFAULT_N_BOOT, help="bootstrap replicates per point")
    p.add_argument("--plot", type=Path, metavar="OUT.png",
                   help="figure of the prediction and its band (.png, .svg or .pdf)")
    p.set_defaults(func=cmd_progress)
