"""``python -m fits``: backtest, sweep and fit on a canonical corpus CSV, no Django needed.

    python -m fits backtest CORPUS [--families F] [--policy NAME] [--json OUT] [--compare-policies]
    python -m fits sweep CORPUS [--families F] [--jobs N] [--json OUT] [--csv OUT]
    python -m fits fit CORPUS --family NAME [--target-params N --target-tokens D] [--plot OUT]
    python -m fits calibrate --train TRAIN --test TEST [--jobs N] [--json OUT]
    python -m fits evaluate-plans --train TRAIN --test TEST [--jobs N] [--json OUT]
    python -m fits runs DIR --metric TAG --tokens-per-step K --params-file P.csv [--csv OUT]  (fits/trackers/cli.py)

Bad input (a missing file, an invalid corpus, an unknown family, a bad number)
is one message on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .api import fit_train, make_predictor, target_run_tokens
from .fitting import DEFAULT_PRIOR
from .backtest import TARGET_FRACTION, are, backtest, split_target, summarise
from .canonical import CorpusValidationError, read_canonical, read_families
from .data import primary_observations
from .fitting import FitInputError
from .interval import prediction_interval
from .policy import POLICIES

OUTPUT_VERSION = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """Bad input from the command line; the message is shown as is."""


# ---------------------------------------------------------------------------
# shared helpers


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = positive_number(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def load_frame(corpus: Path, families: Path | None) -> pd.DataFrame:
    """The corpus's primary-metric fit frame; the corpus is validated (errors name line and column)."""
    if not corpus.is_file():
        raise CliError(f"corpus file not found: {corpus}")
    if families is None:
        beside = corpus.with_name("families.csv")
        families = beside if beside.is_file() else None
    elif not families.is_file():
        raise CliError(f"families file not found: {families}")
    raw = _read(read_canonical, corpus)[0]
    table = _read(read_families, families) if families is not None else None
    try:
        frame = primary_observations(raw, table)
    except ValueError as exc:  # a family with no loss-like metric
        raise CliError(f"{corpus}: {exc}") from None
    if frame.empty:
        raise CliError(f"{corpus}: no observations of a primary (loss) metric")
    return frame


def _read(reader, path: Path):
    try:
        return reader(path)
    except CorpusValidationError as exc:  # already names file line, column and reason
        raise CliError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def json_safe(value):
    """Plain JSON types: numpy scalars and arrays unwrapped, inf and NaN as null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: Path, payload: dict) -> None:
    try:
        path.write_text(json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None


def pct(x) -> str:
    return "failed" if x is None or not np.isfinite(x) else f"{100 * x:.2f}%"


# ---------------------------------------------------------------------------
# backtest


# The method's choices beyond the checkpoint policy, each undone on its own (backtest --compare-policies).
METHOD_VARIANTS = {
    "never-borrow": {"prior": None},  # the single robust fit even where the data cannot identify the exponents
    "always-borrow": {"prior": DEFAULT_PRIOR},  # the exponent posterior everywhere
    "no-schedule": {"terms": ("overfit",)},
    "no-overfit": {"terms": ("schedule",)},
    "huber-1e-3": {"delta": 1e-3},
    "least-squares": {"loss": "ls"},
}


def run_backtest(frame: pd.DataFrame, policy_name: str, target_fraction: float = TARGET_FRACTION,
                 **fit_kwargs) -> tuple[pd.DataFrame, dict]:
    table = backtest(frame, make_predictor(POLICIES[policy_name], **fit_kwargs), target_fraction=target_fraction)
    if table.empty:
        raise CliError("no family has at least 3 distinct sizes: nothing to backtest")
    return table, summarise(table)


def summary_line(name: str, summary: dict, reference: dict | None = None) -> str:
    """One policy's medians; with ``reference`` (the default's summary) also what the policy changes."""
    law = summary["are"]
    worse = summary["worse_than_best_loss_4plus_sizes"]
    change = ""
    if reference is not None and summary is not reference:
        ref = reference["are"]
        change = (f"  vs default: median {100 * (law['median'] - ref['median']):+.2f} pt, "
                  f"p90 {100 * (law['p90'] - ref['p90']):+.2f} pt")
    return (f"{name:<16} median {pct(law['median']):>7}  p90 {pct(law['p90']):>7}  failed {law['failed']:>2}  "
            f"worse than best-loss (>=4 sizes): {len(worse):>2}{change}"
            + (f"  ({', '.join(worse)})" if worse else ""))


def cmd_backtest(args) -> int:
    frame = load_frame(args.corpus, args.families)
    if args.compare_policies:
        results = {}
        # The reference first, then each policy and each method choice undone on its own.
        variants = [(n, n, {}) for n in ["default"] + [n for n in POLICIES if n != "default"]]
        variants += [(n, "default", kw) for n, kw in METHOD_VARIANTS.items()]
        for name, policy, fit_kwargs in variants:
            table, summary = run_backtest(frame, policy, args.target_fraction, **fit_kwargs)
            results[name] = {"summary": summary, "rows": table.to_dict(orient="records")}
            print(summary_line(name, summary, results["default"]["summary"]), flush=True)
        base = results["default"]["summary"]
        print(f"(ARE of the law on the {base['families']} families with >= 3 sizes; baselines do not depend on it)")
        print(f"{'best-loss':<16} median {pct(base['are_best_loss']['median']):>7}  "
              f"p90 {pct(base['are_best_loss']['p90']):>7}")
        print(f"{'most-compute':<16} median {pct(base['are_most_compute']['median']):>7}  "
              f"p90 {pct(base['are_most_compute']['p90']):>7}")
        if args.json:
            write_json(args.json, {"version": OUTPUT_VERSION, "policies": results})
        return 0

    table, summary = run_backtest(frame, args.policy, args.target_fraction)
    print(f"policy {args.policy}: {POLICIES[args.policy].to_dict()}; target: tokens >= {args.target_fraction:g} x "
          "the largest size's final tokens")
    header = f"{'family':<32} {'sizes':>5} {'scale_up':>8} {'ARE law':>8} {'best-loss':>9} {'most-comp':>9} {'s':>6}"
    print(header)
    print("-" * len(header))
    for row in table.itertuples():
        note = f"  {row.error}" if row.error else ""
        print(f"{row.family:<32} {row.n_sizes:>5} {row.scale_up:>8.2f} {pct(row.are):>8} {pct(row.are_best_loss):>9} "
              f"{pct(row.are_most_compute):>9} {row.seconds:>6.3f}{note}")
    print("-" * len(header))
    print(f"families: {summary['families']}")
    for col, label in (("are", "law"), ("are_best_loss", "best-loss"), ("are_most_compute", "most-compute")):
        s = summary[col]
        print(f"{label:<13} median {pct(s['median']):>7}  p90 {pct(s['p90']):>7}  failed {s['failed']}")
    worse = summary["worse_than_best_loss_4plus_sizes"]
    print(f"families with >= 4 sizes worse than best-loss: {len(worse)}" + (f" ({', '.join(worse)})" if worse else ""))
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, "policy": POLICIES[args.policy].to_dict(),
                               "summary": summary, "rows": table.to_dict(orient="records")})
    return 0


# ---------------------------------------------------------------------------
# sweep


def cmd_sweep(args) -> int:
    from tqdm import tqdm

    from .sweep import run_sweep

    frame = load_frame(args.corpus, args.families)
    started = time.perf_counter()
    with tqdm(total=None, unit="family", desc="sweep", file=sys.stderr, disable=args.quiet) as bar:
        def progress(done, total, family):
            bar.total = total
            bar.set_postfix_str(family, refresh=False)
            bar.update(done - bar.n)

        table = run_sweep(frame, jobs=args.jobs, progress=progress)
    wall = time.perf_counter() - started
    if table.empty:
        raise CliError("no family has at least 3 distinct sizes: nothing to sweep")
    print(f"laws: {len(table)}  families: {table['family'].nunique()}  wall: {wall:.1f} s  "
          f"laws/s: {len(table) / wall:.1f}  failed fits: {int(np.isinf(table['are']).sum())}")
    for col in ("policy", "fraction", "n_models"):
        medians = table.groupby(col)["are"].agg(["median", "size"])
        print(f"median ARE by {col}: " + "  ".join(f"{k}={pct(row['median'])} (n={int(row['size'])})" for k, row in medians.iterrows()))
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, "rows": table.to_dict(orient="records")})
    if args.csv:
        flat = table.copy()
        for col in flat.columns:  # lists and dicts (sizes, params) as JSON text in a cell
            if flat[col].map(lambda v: isinstance(v, (list, dict))).any():
                flat[col] = flat[col].map(lambda v: json.dumps(json_safe(v)))
        try:
            flat.to_csv(args.csv, index=False)
        except OSError as exc:
            raise CliError(f"cannot write {args.csv}: {exc}") from None
    return 0


# ---------------------------------------------------------------------------
# fit


def cmd_fit(args) -> int:
    if (args.target_params is None) != (args.target_tokens is None):
        raise CliError("give both --target-params and --target-tokens, or neither")
    # Checked before fitting, so a typo does not cost a bootstrap.
    plot_path = args.plot or Path(f"fit-{args.family}.png")
    if plot_path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CliError(f"--plot must end in .png, .svg or .pdf, not {plot_path.name!r}")
    if not plot_path.parent.is_dir():
        raise CliError(f"cannot write {plot_path}: no directory {plot_path.parent}")
    frame = load_frame(args.corpus, args.families)
    family = frame[frame["family"] == args.family]
    if family.empty:
        names = sorted(frame["family"].unique())
        raise CliError(f"unknown family {args.family!r}; the corpus has {len(names)}: {', '.join(names)}")
    policy = POLICIES[args.policy]
    heldout = None
    train = family
    if args.holdout_largest:
        if family["params"].nunique() < 2:
            raise CliError(f"family {args.family!r} has one size: nothing to hold out")
        train, heldout = split_target(family)

    result, selected = fit_train(train, policy=policy)
    print(f"family {args.family}: {train['params'].nunique()} sizes, {len(train)} checkpoints; "
          f"policy {policy.name} kept {len(selected)}")
    print(f"law {result.form.name}: {result.form.description}")
    print(f"success: {result.success} ({result.message}); {result.nfev} evaluations in {result.seconds:.3f} s")
    for name, value in result.params.items():
        print(f"  {name:<6} = {value:.6g}  +/- {result.stderr.get(name, float('nan')):.3g}")
    stats = {k: v for k, v in result.stats.items() if not isinstance(v, dict)}
    print("fit stats: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
    if "posterior" in result.stats:
        print("exponent posterior: " + ", ".join(f"{k}={v:.4g}" for k, v in result.stats["posterior"].items()))

    target_params = args.target_params
    target_tokens = args.target_tokens
    if heldout is not None:
        held_n, held_d = heldout["params"].to_numpy(), heldout["tokens"].to_numpy()
        pred = result.predict(held_n, held_d, heldout["epochs"], target_run_tokens(held_n, held_d))
        print(f"held-out largest size N={heldout['params'].iloc[0]:.4g}: ARE {pct(are(heldout['value'], pred))} "
              f"over {len(heldout)} checkpoints")
        if target_params is None:
            target_params, target_tokens = float(heldout["params"].iloc[0]), float(heldout["tokens"].max())

    curve = None
    if target_params is not None:
        # One bootstrap for the target and for the curve drawn up to it.
        start = min(float(selected["tokens"].min()), target_tokens)
        grid = np.geomspace(start, target_tokens, 40) if target_tokens > start else np.array([target_tokens])
        interval = prediction_interval(train, np.full(grid.size, target_params), grid, coverage=args.coverage,
                                       n_boot=args.n_boot, seed=args.seed, policy=policy)
        print(f"target N={target_params:.4g}, D={target_tokens:.4g}: predicted loss {interval.prediction[-1]:.4f}, "
              f"{args.coverage:.0%} interval [{interval.lower[-1]:.4f}, {interval.upper[-1]:.4f}] "
              f"(bootstrap sd {interval.boot_sd_log[-1]:.4f}, method sd {interval.method_sd_log:.4f} in log loss)")
        curve = (grid, interval)

    from .plots import fit_figure

    extra = {}
    if curve is not None:
        grid, interval = curve
        extra = dict(target_params=target_params, target_tokens=grid, target_prediction=interval.prediction,
                     target_lower=interval.lower, target_upper=interval.upper, coverage=args.coverage)
    fig = fit_figure(train, result, used=selected, heldout=heldout,
                     title=f"{args.family}: {result.form.name} law, policy {policy.name}", **extra)
    try:
        fig.savefig(plot_path, dpi=120)
    except OSError as exc:
        raise CliError(f"cannot write {plot_path}: {exc}") from None
    print(f"plot: {plot_path}")
    return 0


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fits", description="scaleplan's scaling-law engine")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("corpus", type=Path, help="canonical corpus CSV (.csv or .csv.gz)")
        p.add_argument("--families", type=Path,
                       help="families file naming each family's primary metric (default: families.csv beside CORPUS)")

    p = sub.add_parser("backtest", help="the paper's protocol: fit smaller sizes, score the largest")
    common(p)
    p.add_argument("--policy", choices=sorted(POLICIES), default="default", help="checkpoint policy")
    p.add_argument("--compare-policies", action="store_true", help="one summary line per checkpoint policy")
    p.add_argument("--target-fraction", type=fraction, default=TARGET_FRACTION,
                   help="score target checkpoints with at least this share of the largest size's final tokens "
                        f"(default {TARGET_FRACTION}: the last 30%% of training)")
    p.add_argument("--json", type=Path, help="write {version, summary, rows} here")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("sweep", help="backtest many designs per family (the error model's data)")
    common(p)
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes")
    p.add_argument("--json", type=Path, help="write {version, rows} here")
    p.add_argument("--csv", type=Path, help="write the rows as CSV here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("fit", help="fit one family, predict a target with an interval, plot")
    common(p)
    p.add_argument("--family", required=True)
    p.add_argument("--policy", choices=sorted(POLICIES), default="default", help="checkpoint policy")
    p.add_argument("--holdout-largest", action="store_true",
                   help="fit the protocol's train split and score the largest size's tail")
    p.add_argument("--target-params", type=positive_number, metavar="N")
    p.add_argument("--target-tokens", type=positive_number, metavar="D")
    p.add_argument("--coverage", type=fraction, default=0.8)
    p.add_argument("--n-boot", type=positive_int, default=100, help="bootstrap replicates for the interval")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--plot", type=Path, help="figure path, .png or .svg (default: ./fit-FAMILY.png)")
    p.set_defaults(func=cmd_fit)

    def train_test(p):
        p.add_argument("--train", type=Path, required=True, help="canonical CSV the error model learns from")
        p.add_argument("--test", type=Path, required=True,
                       help="canonical CSV to check on (families also in TRAIN are held out of the model)")
        p.add_argument("--train-families", type=Path, help="families file for TRAIN (default: beside it)")
        p.add_argument("--test-families", type=Path, help="families file for TEST (default: beside it)")
        p.add_argument("--jobs", type=positive_int, default=2, help="worker processes for the sweeps")
        p.add_argument("--json", type=Path, help="write the result as JSON here")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("calibrate", help="learn the error model from TRAIN, check its intervals on TEST")
    train_test(p)
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("evaluate-plans", help="recommend within TEST families' real runs, compare naive designs")
    train_test(p)
    p.add_argument("--budgets", type=fraction, nargs="+", default=[0.01, 0.03, 0.1, 0.3],
                   help="budgets as shares of the target's compute")
    p.set_defaults(func=cmd_evaluate_plans)

    from .trackers.cli import add_runs_command  # `runs`: TensorBoard / W&B / MLflow -> a canonical runs CSV

    add_runs_command(sub)
    return parser


# ---------------------------------------------------------------------------
# calibrate / evaluate-plans: the error model and the plans, checked on TEST families


def _sweep_with_bar(frame: pd.DataFrame, jobs: int, quiet: bool, label: str) -> pd.DataFrame:
    from tqdm import tqdm

    from .sweep import run_sweep

    with tqdm(total=None, unit="family", desc=label, file=sys.stderr, disable=quiet) as bar:
        def progress(done, total, family):
            bar.total = total
            bar.set_postfix_str(family, refresh=False)
            bar.update(done - bar.n)

        table = run_sweep(frame, jobs=jobs, progress=progress)
    if table.empty:
        raise CliError(f"{label}: no family has at least 3 distinct sizes: nothing to learn from")
    return table


def _train_and_test(args):
    """Sweep TRAIN (and TEST, unless it is the same file) and learn the error model from TRAIN."""
    from .errormodel import fit_error_model

    train_frame = load_frame(args.train, args.train_families)
    same = args.test.resolve() == args.train.resolve() and args.test_families == args.train_families
    test_frame = train_frame if same else load_frame(args.test, args.test_families)
    train_sweep = _sweep_with_bar(train_frame, args.jobs, args.quiet, "sweep TRAIN")
    test_sweep = train_sweep if same else _sweep_with_bar(test_frame, args.jobs, args.quiet, "sweep TEST")
    started = time.perf_counter()
    model = fit_error_model(train_sweep)
    print(f"error model: {model.trained_on['rows']} laws from {model.trained_on['families']} families "
          f"({time.perf_counter() - started:.1f} s); leave-one-family-out coverage "
          f"{model.validation['coverage']:.3f}, median |log ratio| {model.validation['median_abs_log_ratio']:.3f}",
          file=sys.stderr)
    return model, train_sweep, test_sweep, test_frame


def cmd_calibrate(args) -> int:
    from .errormodel import calibrate

    model, train_sweep, test_sweep, _ = _train_and_test(args)
    result = calibrate(train_sweep, test_sweep, model=model)
    print(f"TEST: {result['cases']} (family, design) cases in {result['families']} families; "
          f"p10-p90 coverage {result['coverage']:.3f} (target 0.75-0.85); "
          f"median |log(p50 / realised)| {result['median_abs_log_ratio']:.3f} (target <= {math.log(2):.3f})")
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, **result})
    return 0


def cmd_evaluate_plans(args) -> int:
    from .errormodel import model_without
    from .plan import evaluate_plans

    model, train_sweep, _, test_frame = _train_and_test(args)
    train_families = set(train_sweep["family"])

    def model_for(family):  # a TEST family seen in TRAIN is planned for by a model that never saw it
        if family in train_families:
            return model_without(train_sweep, family, model.margin, model.trained_on)
        return model

    result = evaluate_plans(model_for, test_frame, budgets=tuple(args.budgets))
    for row in result["rows"]:
        rec = row["recommended"]
        alts = "  ".join(f"{a['name']}={pct(a['realized_are'])}" for a in row["alternatives"])
        print(f"{row['family']:32s} budget {row['budget_fraction']:>5.0%}  recommended "
              f"{rec['design']['n_models']} models ({rec['design']['name']}) p50 {pct(rec['predicted_p50'])} "
              f"realised {pct(rec['realized_are'])}  |  {alts}")
    print(f"win rate (recommended no worse than the best naive design): {result['win_rate']:.3f} "
          f"over {result['cases']} (family, budget) cases")
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, **result})
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on a bad flag or number
    try:
        return args.func(args)
    except (CliError, FitInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
