"""``python -m fits backtest`` and ``python -m fits fit``: the method on a corpus's families."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..api import make_predictor
from ..backtest import are, backtest, split_target, summarise
from ..method import CURVES, DEFAULT_METHOD, FINAL, ALL_POINTS, AutoMethod
from ..posterior import DEFAULT_PRIOR
from ..targets import TARGET_FRACTION
from .common import CliError, fraction, load_frame, load_frames, pct, positive_int, positive_number, short_source, \
    write_json

# The method's choices, each undone on its own (backtest --compare): what each one buys.
VARIANTS = {
    "default": DEFAULT_METHOD,
    "curves only": CURVES,
    "final losses only": FINAL,
    "all points only": ALL_POINTS,
    "one rollout fold": AutoMethod(candidates=DEFAULT_METHOD.candidates, folds=1),
    "never borrow": AutoMethod(candidates=tuple(c.with_params(prior=None) for c in DEFAULT_METHOD.candidates)),
    "always borrow": AutoMethod(candidates=tuple(c.with_params(prior=DEFAULT_PRIOR)
                                                 for c in DEFAULT_METHOD.candidates)),
    "no schedule term": AutoMethod(candidates=tuple(c.with_params(terms=("overfit",))
                                                    for c in DEFAULT_METHOD.candidates)),
    "huber 1e-3": AutoMethod(candidates=tuple(c.with_params(delta=1e-3) for c in DEFAULT_METHOD.candidates)),
    "least squares": AutoMethod(candidates=tuple(c.with_params(loss="ls") for c in DEFAULT_METHOD.candidates)),
}


def summary_line(name: str, summary: dict, reference: dict | None = None) -> str:
    """One method's figures; with ``reference`` (the default's summary) also what it changes."""
    law = summary["are"]
    worse = summary["worse_than_best_loss_4plus_sizes"]
    src = summary.get("median_of_source_medians", float("nan"))
    change = ""
    if reference is not None and summary is not reference:
        ref = reference["are"]
        change = (f"  vs default: median {100 * (law['median'] - ref['median']):+.2f} pt, "
                  f"p90 {100 * (law['p90'] - ref['p90']):+.2f} pt, by source "
                  f"{100 * (src - reference.get('median_of_source_medians', np.nan)):+.2f} pt")
    return (f"{name:<18} median {pct(law['median']):>7}  p90 {pct(law['p90']):>7}  by source {pct(src):>7}  "
            f"failed {law['failed']:>2}  worse than best-loss (>=4 sizes): {len(worse):>2}{change}")


def cmd_backtest(args) -> int:
    frame = load_frames(args.corpus, args.families)
    if args.compare:
        results = {}
        for name, method in VARIANTS.items():
            table = backtest(frame, make_predictor(method), target_fraction=args.target_fraction)
            summary = summarise(table)
            results[name] = {"summary": summary, "rows": table.to_dict(orient="records")}
            print(summary_line(name, summary, results["default"]["summary"]), flush=True)
        base = results["default"]["summary"]
        print(f"(ARE of the law on the {base['families']} families with >= 3 sizes; baselines do not depend on it)")
        for col, label in (("are_best_loss", "best-loss"), ("are_most_compute", "most-compute")):
            print(f"{label:<18} median {pct(base[col]['median']):>7}  p90 {pct(base[col]['p90']):>7}")
        if args.json:
            write_json(args.json, {"version": 2, "variants": results})
        return 0

    table = backtest(frame, make_predictor(DEFAULT_METHOD), target_fraction=args.target_fraction)
    if table.empty:
        raise CliError("no family has at least 3 distinct sizes: nothing to backtest")
    summary = summarise(table)
    print(f"method: {DEFAULT_METHOD.name} (chooses among {', '.join(c.name for c in DEFAULT_METHOD.candidates)} "
          f"by rolling each out on the family's own sizes); target: tokens >= {args.target_fraction:g} x the largest "
          "size's final tokens")
    header = f"{'family':<36} {'sizes':>5} {'scale_up':>8} {'ARE law':>8} {'best-loss':>9} {'most-comp':>9} {'s':>6}"
    print(header)
    print("-" * len(header))
    for row in table.itertuples():
        note = f"  {row.error}" if row.error else ""
        print(f"{row.family:<36} {row.n_sizes:>5} {row.scale_up:>8.2f} {pct(row.are):>8} {pct(row.are_best_loss):>9} "
              f"{pct(row.are_most_compute):>9} {row.seconds:>6.3f}{note}")
    print("-" * len(header))
    print(f"families: {summary['families']}")
    for col, label in (("are", "law"), ("are_best_loss", "best-loss"), ("are_most_compute", "most-compute")):
        s = summary[col]
        print(f"{label:<13} median {pct(s['median']):>7}  p90 {pct(s['p90']):>7}  failed {s['failed']}")
    worse = summary["worse_than_best_loss_4plus_sizes"]
    print(f"families with >= 4 sizes worse than best-loss: {len(worse)}" + (f" ({', '.join(worse)})" if worse else ""))
    if "by_source" in summary:
        print("by source (each paper's families; a family from an unseen paper is judged like one more source):")
        for src, s in sorted(summary["by_source"].items(), key=lambda kv: kv[1]["median"]):
            print(f"  {short_source(src):<42} families {s['families']:>3}  median {pct(s['median']):>7}  "
                  f"worst {pct(s['max']):>7}")
        print(f"median of the sources' medians: {pct(summary['median_of_source_medians'])}")
    if args.json:
        write_json(args.json, {"version": 2, "method": DEFAULT_METHOD.get_params(), "summary": summary,
                               "rows": table.to_dict(orient="records")})
    return 0


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
    heldout = None
    train = family
    if args.holdout_largest:
        if family["params"].nunique() < 2:
            raise CliError(f"family {args.family!r} has one size: nothing to hold out")
        train, heldout = split_target(family)

    fit = DEFAULT_METHOD.fit(train)
    result = fit.result
    print(f"family {args.family}: {train['params'].nunique()} sizes, {len(train)} checkpoints; "
          f"method {fit.method.name} fitted {len(fit.used)}")
    if fit.choice:
        print(f"why: {fit.choice['reason']}; rollout ARE " + ", ".join(
            f"{k} {pct(v)}" for k, v in fit.choice["rollout_mean"].items()))
    print(f"law {result.form.name}: {result.form.description}")
    print(f"success: {result.success} ({result.message}); {result.nfev} evaluations in {result.seconds:.3f} s")
    for name, value in result.params.items():
        print(f"  {name:<10} = {value:.6g}  +/- {result.stderr.get(name, float('nan')):.3g}")
    stats = {k: v for k, v in result.stats.items() if not isinstance(v, dict)}
    print("fit stats: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
    if "posterior" in result.stats:
        print("exponent posterior: " + ", ".join(f"{k}={v:.4g}" for k, v in result.stats["posterior"].items()))

    target_params, target_tokens = args.target_params, args.target_tokens
    if heldout is not None:
        held_n, held_d = heldout["params"].to_numpy(), heldout["tokens"].to_numpy()
        print(f"held-out largest size N={heldout['params'].iloc[0]:.4g}: ARE "
              f"{pct(are(heldout['value'], fit.predict(held_n, held_d, heldout['epochs'])))} "
              f"over {len(heldout)} checkpoints")
        if target_params is None:
            target_params, target_tokens = float(heldout["params"].iloc[0]), float(heldout["tokens"].max())

    extra = {}
    if target_params is not None:
        # One bootstrap for the target and for the curve drawn up to it.
        start = min(float(fit.used.tokens.min()), target_tokens)
        grid = np.geomspace(start, target_tokens, 40) if target_tokens > start else np.array([target_tokens])
        interval = fit.interval(np.full(grid.size, target_params), grid, coverage=args.coverage, n_boot=args.n_boot,
                                seed=args.seed)
        print(f"target N={target_params:.4g}, D={target_tokens:.4g}: predicted loss {interval.prediction[-1]:.4f}, "
              f"{args.coverage:.0%} interval [{interval.lower[-1]:.4f}, {interval.upper[-1]:.4f}] "
              f"(bootstrap sd {interval.boot_sd_log[-1]:.4f}, method sd {interval.method_sd_log:.4f} in log loss)")
        extra = dict(target_params=target_params, target_tokens=grid, target_prediction=interval.prediction,
                     target_lower=interval.lower, target_upper=interval.upper, coverage=args.coverage)

    from ..plots import fit_figure

    fig = fit_figure(train, result, used=fit.used_frame(), heldout=heldout,
                     title=f"{args.family}: {result.form.name} law, method {fit.method.name}", **extra)
    try:
        fig.savefig(plot_path, dpi=120)
    except OSError as exc:
        raise CliError(f"cannot write {plot_path}: {exc}") from None
    print(f"plot: {plot_path}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("backtest", help="the paper's protocol: fit smaller sizes, score the largest")
    p.add_argument("corpus", type=Path, nargs="+", help="canonical corpus CSV(s) (.csv or .csv.gz)")
    p.add_argument("--families", type=Path, nargs="+",
                   help="families file per corpus naming each family's primary metric (default: families.csv beside it)")
    p.add_argument("--compare", "--compare-policies", dest="compare", action="store_true",
                   help="one summary line per method variant: what each choice of the method buys")
    p.add_argument("--target-fraction", type=fraction, default=TARGET_FRACTION,
                   help="score target checkpoints with at least this share of the largest size's final tokens "
                        f"(default {TARGET_FRACTION}: the last 30%% of training)")
    p.add_argument("--json", type=Path, help="write {version, summary, rows} here")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("fit", help="fit one family, predict a target with an interval, plot")
    p.add_argument("corpus", type=Path, help="canonical corpus CSV (.csv or .csv.gz)")
    p.add_argument("--families", type=Path, help="families file (default: families.csv beside CORPUS)")
    p.add_argument("--family", required=True)
    p.add_argument("--holdout-largest", action="store_true",
                   help="fit the protocol's train split and score the largest size's tail")
    p.add_argument("--target-params", type=positive_number, metavar="N")
    p.add_argument("--target-tokens", type=positive_number, metavar="D")
    p.add_argument("--coverage", type=fraction, default=0.8)
    p.add_argument("--n-boot", type=positive_int, default=100, help="bootstrap replicates for the interval")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--plot", type=Path, help="figure path, .png or .svg (default: ./fit-FAMILY.png)")
    p.set_defaults(func=cmd_fit)

