"""``python -m fits sweep``, ``calibrate`` and ``evaluate-plans``: the error model, learned and checked."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errormodel import calibrate, fit_error_model, groups_of, model_without
from ..jsonsafe import json_safe
from ..plan import evaluate_plans
from ..sweep import run_sweep
from .common import OUTPUT_VERSION, CliError, fraction, load_frames, pct, positive_int, progress_bar, short_source, \
    write_json


def sweep(frame: pd.DataFrame, jobs: int, quiet: bool, label: str) -> pd.DataFrame:
    bar, progress = progress_bar(label, quiet)
    with bar:
        table = run_sweep(frame, jobs=jobs, progress=progress)
    if table.empty:
        raise CliError(f"{label}: no family has at least 3 distinct sizes: nothing to learn from")
    return table


def cmd_sweep(args) -> int:
    frame = load_frames(args.corpus, args.families)
    started = time.perf_counter()
    table = sweep(frame, args.jobs, args.quiet, "sweep")
    wall = time.perf_counter() - started
    print(f"laws: {len(table)}  families: {table['family'].nunique()}  wall: {wall:.1f} s  "
          f"laws/s: {len(table) / wall:.1f}  failed fits: {int(np.isinf(table['are']).sum())}")
    for col in ("method", "fraction", "n_models"):
        medians = table.groupby(col)["are"].agg(["median", "size"])
        print(f"median ARE by {col}: " + "  ".join(f"{k}={pct(row['median'])} (n={int(row['size'])})"
                                                  for k, row in medians.iterrows()))
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


def _train_and_test(args):
    """Sweep TRAIN (and TEST, unless it is absent or the same files), learn the error model from TRAIN."""
    if args.save_model is not None and not args.save_model.parent.is_dir():
        raise CliError(f"cannot write {args.save_model}: no directory {args.save_model.parent}")
    train_frame = load_frames(args.train, args.train_families)
    same = not args.test or ([p.resolve() for p in args.test] == [p.resolve() for p in args.train]
                             and args.test_families == args.train_families)
    test_frame = train_frame if same else load_frames(args.test, args.test_families)
    train_sweep = sweep(train_frame, args.jobs, args.quiet, "sweep TRAIN")
    test_sweep = train_sweep if same else sweep(test_frame, args.jobs, args.quiet, "sweep TEST")
    started = time.perf_counter()
    bar, progress = progress_bar("error model", args.quiet)
    with bar:
        model = fit_error_model(train_sweep, progress=progress)
    v = model.validation
    print(f"error model: {model.trained_on['rows']} laws from {model.trained_on['families']} families of "
          f"{model.trained_on['groups']} sources ({time.perf_counter() - started:.1f} s); leave-one-source-out, "
          f"families weighing the same: fit level coverage {v['fit']['coverage_family_weighted']:.3f}, "
          f"p90/p10 {v['fit']['median_p90_over_p10']:.1f}; plan level coverage "
          f"{v['plan']['coverage_family_weighted']:.3f}, p90/p10 {v['plan']['median_p90_over_p10']:.1f}",
          file=sys.stderr)
    if args.save_model is not None:
        write_json(args.save_model, model.to_dict())
        print(f"error model saved: {args.save_model}", file=sys.stderr)
    return model, train_sweep, test_sweep, test_frame


def cmd_calibrate(args) -> int:
    model, train_sweep, test_sweep, _ = _train_and_test(args)
    result = calibrate(train_sweep, test_sweep, model=model)
    what = "TEST" if args.test else "TRAIN, each source held out in turn"
    for label, figures in (("fit level (the design's runs known)", result),
                           ("plan level (design only)", result["plan_level"])):
        print(f"{what}, {label}: {figures['cases']} (family, design) cases in {result['families']} families; "
              f"families weighing the same: p10-p90 coverage {figures['coverage']:.3f} (target 0.75-0.85); "
              f"median |log(p50 / realised)| {figures['median_abs_log_ratio']:.3f} (target <= {math.log(2):.3f}); "
              f"median p90/p10 {figures['median_p90_over_p10']:.1f}")
    rows = pd.DataFrame({"source": [r["source"] for r in result["rows"]], "family": [r["family"] for r in result["rows"]],
                         "inside": [r["predicted"]["p10"] <= max(r["realized_are"], 1e-4) <= r["predicted"]["p90"]
                                    for r in result["rows"]]})
    if not rows.empty:
        per_source = rows.groupby(["source", "family"])["inside"].mean().groupby(level=0).agg(["mean", "size"])
        print("coverage by source (fit level, families weighing the same):")
        for src, r in per_source.sort_values("mean").iterrows():
            print(f"  {short_source(src):<42} families {int(r['size']):>3}  coverage {r['mean']:.2f}")
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, **result})
    return 0


def cmd_evaluate_plans(args) -> int:
    model, train_sweep, _, test_frame = _train_and_test(args)
    train_groups = set(groups_of(train_sweep)) | set(train_sweep["family"].astype(str))
    sources = test_frame.groupby("family")["source"].first() if "source" in test_frame.columns else pd.Series(
        dtype=str)
    cache = {}

    def model_for(family):  # a TEST family whose source is in TRAIN is planned for by a model that never saw it
        key = sources.get(family) or family
        if key not in train_groups:
            key = family if family in train_groups else None
        if key is None:
            return model
        if key not in cache:
            cache[key] = model_without(train_sweep, key, model)
        return cache[key]

    result = evaluate_plans(model_for, test_frame, budgets=tuple(args.budgets))
    for row in result["rows"]:
        rec = row["recommended"]
        alts = "  ".join(f"{a['name']}={pct(a['realized_are'])}" for a in row["alternatives"])
        print(f"{row['family']:34s} budget {row['budget_fraction']:>5.0%}  recommended "
              f"{rec['design']['n_models']} models ({rec['design']['name']}) p90 {pct(rec['predicted_p90'])} "
              f"realised {pct(rec['realized_are'])}  |  {alts}")
    print(f"win rate (recommended no worse than the best naive design): {result['win_rate']:.3f} "
          f"over {result['cases']} (family, budget) cases")
    if args.json:
        write_json(args.json, {"version": OUTPUT_VERSION, **result})
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("sweep", help="backtest many designs per family (the error model's data)")
    p.add_argument("corpus", type=Path, nargs="+", help="canonical corpus CSV(s) (.csv or .csv.gz)")
    p.add_argument("--families", type=Path, nargs="+", help="families file per corpus (default: beside it)")
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes")
    p.add_argument("--json", type=Path, help="write {version, rows} here")
    p.add_argument("--csv", type=Path, help="write the rows as CSV here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    def train_test(p):
        p.add_argument("--train", type=Path, nargs="+", required=True,
                       help="canonical CSV(s) the error model learns from (e.g. the reference and the extra corpus)")
        p.add_argument("--test", type=Path, nargs="+",
                       help="canonical CSV(s) to check on; default: TRAIN, each source held out in turn "
                            "(TEST families whose source is in TRAIN are always held out of the model)")
        p.add_argument("--train-families", type=Path, nargs="+", help="families file per TRAIN corpus (default: beside it)")
        p.add_argument("--test-families", type=Path, nargs="+", help="families file per TEST corpus (default: beside it)")
        p.add_argument("--jobs", type=positive_int, default=2, help="worker processes for the sweeps")
        p.add_argument("--json", type=Path, help="write the result as JSON here")
        p.add_argument("--save-model", type=Path, metavar="M.json",
                       help="write the error model learned from TRAIN here (python -m fits plan and the service load it)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("calibrate", help="learn the error model from TRAIN, check its intervals on TEST")
    train_test(p)
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("evaluate-plans", help="recommend within TEST families' real runs, compare naive designs")
    train_test(p)
    p.add_argument("--budgets", type=fraction, nargs="+", default=[0.01, 0.03, 0.1, 0.3],
                   help="budgets as shares of the target's compute")
    p.set_defaults(func=cmd_evaluate_plans)
