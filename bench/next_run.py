"""Benchmark: following the next-run advice against adding sizes in increasing order, at the same compute.

Usage: .venv/bin/python bench/next_run.py [--corpus colpret extra] [--jobs 2] [--steps 3] [--no-own-fit]
                                          [--sweep-cache FILE] [--json OUT]

On every family with at least 5 sizes: start from the two smallest sizes, ask
``fits.advise`` for the next run with the FLOPs left (the compute of every
other size below the target), add the family's real runs of the size nearest
the advice (not yet used, fitting the FLOPs left), and score
``fits.predict_loss`` on the largest size's last 30% of tokens
(``fits.backtest.split_target``) after each step - against the two smallest
sizes plus the next ones in increasing order, as many whole sizes as fit in the
same cumulative compute (6 N D of the runs added), and, beside it, the
increasing design that spends at least as much (``fits.advice_backtest``).

The error model is the library's, learned from the sweep of both corpora
(``fits.sweep.run_sweep``, computed once per run, or read from
``--sweep-cache``) and refitted without each family's source
(``fits.errormodel.model_without``): no family is advised by a model that saw
its paper. A second arm follows the advice with no error model (ranked by the
runs' own fit, as a user without one gets it).

The bar: on median over families (each family: the mean of its steps' realised
ARE) the advice is no worse than increasing order, and better on at least 60%
of the families.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fits.advice_backtest import MAX_STEPS, follow_advice, summarise_follow  # noqa: E402
from fits.cli.common import load_frames, short_source  # noqa: E402
from fits.errormodel import fit_error_model, groups_of, model_without, usable_rows  # noqa: E402
from fits.jsonsafe import json_safe  # noqa: E402
from fits.sweep import run_sweep  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpus"
CORPORA = {"colpret": SHARED / "colpret.csv.gz", "extra": SHARED / "extra" / "observations.csv.gz"}
MIN_FAMILY_SIZES = 5


def pct(x) -> str:
    return "  inf" if not np.isfinite(x) else f"{100 * x:.2f}%"


def sweep_of(frame: pd.DataFrame, cache: Path | None, jobs: int) -> tuple[pd.DataFrame, float]:
    """The sweep of every eligible family (read from ``cache`` when it is there; written there otherwise)."""
    if cache is not None and cache.is_file():
        return pd.read_pickle(cache), 0.0
    started = time.perf_counter()
    table = run_sweep(frame, jobs=jobs)
    seconds = time.perf_counter() - started
    if cache is not None:
        table.to_pickle(cache)
    return table, seconds


def print_family(table: pd.DataFrame, label: str) -> None:
    for family, part in table.groupby("family", sort=False):
        if (part["error"].fillna("") != "").any():
            print(f"  {family:36s} {label}: {part['error'].iloc[-1]}")
            continue
        steps = "  ".join(f"+{r.added_params:.3g} {pct(r.are_advice)} vs {pct(r.are_increasing)}"
                          f" ({len(r.increasing_sizes)} sizes; at least: {pct(r.are_at_least)})"
                          for r in part.itertuples())
        print(f"  {family:36s} start {pct(part['are_start'].iloc[0])}  {steps}")


def print_summary(summary: dict, label: str) -> None:
    print(f"{label}: {summary['families']} families, {summary['steps']} advised steps")
    print(f"  {'step':>4} {'families':>8} {'advice':>8} {'increasing':>10} {'at least':>9}   "
          f"better/tied/worse vs increasing   vs at least")
    for step, s in summary["by_step"].items():
        print(f"  {step:>4} {s['families']:>8} {pct(s['median_advice']):>8} {pct(s['median_increasing']):>10} "
              f"{pct(s['median_at_least']):>9}   {s['better']:.2f} / {s['tied']:.2f} / {s['worse']:.2f}"
              f"{'':18}{s['better_at_least']:.2f} / {s['tied_at_least']:.2f} / {s['worse_at_least']:.2f}")
    print(f"  per family (mean over its steps), median: advice {pct(summary['median_advice'])}, increasing "
          f"{pct(summary['median_increasing'])}, at least {pct(summary['median_at_least'])}; advice better on "
          f"{summary['better']:.0%} of families (tied {summary['tied']:.0%}), better than 'at least' on "
          f"{summary['better_at_least']:.0%} (tied {summary['tied_at_least']:.0%})")
    print(f"  bar (median no worse, better on >= 60% of families): {'met' if summary['bar_met'] else 'NOT met'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", choices=tuple(CORPORA), default=list(CORPORA))
    parser.add_argument("--jobs", type=int, default=2, help="processes for the sweep")
    parser.add_argument("--steps", type=int, default=MAX_STEPS, help="advised runs to follow per family")
    parser.add_argument("--no-own-fit", action="store_true", help="skip the arm without an error model")
    parser.add_argument("--sweep-cache", type=Path, help="read the sweep from this pickle, or write it there")
    parser.add_argument("--per-family", action="store_true", help="one line per family")
    parser.add_argument("--json", type=Path, help="write the per-step rows and the summaries here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    frame = load_frames([CORPORA[c] for c in args.corpus])
    sizes = frame.groupby("family")["params"].nunique()
    families = sorted(sizes[sizes >= MIN_FAMILY_SIZES].index)
    sweep, sweep_seconds = sweep_of(frame, args.sweep_cache, args.jobs)
    t = time.perf_counter()
    model = fit_error_model(sweep)
    model_seconds = time.perf_counter() - t
    print(f"families with >= {MIN_FAMILY_SIZES} sizes: {len(families)}; sweep {len(sweep)} laws "
          f"({'cached' if not sweep_seconds else f'{sweep_seconds:.0f} s'}), error model {model_seconds:.0f} s")

    rows = usable_rows(sweep)
    known = set(groups_of(rows)) | set(rows["family"].astype(str))
    held_out, arms = {}, {"error model": [], "own fit": []}
    timing = {"error model": 0.0, "own fit": 0.0}
    for family in families:
        part = frame[frame["family"] == family]
        source = str(part["source"].iloc[0]) or family
        key = source if source in known else family
        if key not in held_out:
            held_out[key] = model_without(sweep, key, model)
        t = time.perf_counter()
        arms["error model"].append(follow_advice(part, held_out[key], max_steps=args.steps))
        timing["error model"] += time.perf_counter() - t
        if not args.no_own_fit:
            t = time.perf_counter()
            arms["own fit"].append(follow_advice(part, None, max_steps=args.steps))
            timing["own fit"] += time.perf_counter() - t
    print(f"error models without each family's source: {len(held_out)} "
          f"({', '.join(sorted({short_source(k) for k in held_out}))[:200]}...)")

    out = {"families": families, "arms": {}}
    for label, tables in arms.items():
        if not tables:
            continue
        table = pd.concat(tables, ignore_index=True)
        summary = summarise_follow(table)
        print()
        if args.per_family:
            print(f"{label}: per family (advised size added: ARE advice vs increasing order at the same compute)")
            print_family(table, label)
        print_summary(summary, f"advice ranked by the {label}")
        print(f"  {timing[label]:.0f} s for {summary['steps']} steps ({timing[label] / max(summary['steps'], 1):.2f} "
              "s a step: advice and both designs' fits)")
        out["arms"][label] = {"summary": summary, "rows": table.to_dict(orient="records")}
    print(f"\nwall: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(json_safe(out), indent=1, allow_nan=False) + "\n")
    return 0 if all(a["summary"]["bar_met"] for a in out["arms"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
