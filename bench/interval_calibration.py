"""How honest are the prediction intervals? Their coverage on held-out families, and the method-error table.

    .venv/bin/python bench/interval_calibration.py [--n-boot 30] [--corpus C...]

For every family with at least three sizes (both corpora by default), the
backtest protocol: fit the smaller sizes (``fits.fit``), predict the largest
size's last 30% of tokens with an interval at 50/80/90%, and count the target
checkpoints inside it, every family weighing the same (a source with more than
six families scaled down to six, as in the error model). Half-widths compared:

  bootstrap    the run-level bootstrap alone (fits.interval)
  table        fits.interval.METHOD_ERROR_QUANTILES: the corpus backtest's quantiles of
               |log error| normalised by the scale-up, re-derived here (printed) and also
               checked with each family's source left out of the table
  error model  what the error model's fit level expects of this design with this fit's
               evidence (Fit.interval(..., error_model=...)), the model learned from the
               sweep without the family's source (leave-one-source-out)
and their combinations (the library: table and bootstrap in quadrature without an
error model, the error model alone with one).
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fits  # noqa: E402
from fits.cli.common import load_frames  # noqa: E402
from fits.errormodel import family_weights, fit_error_model, model_without  # noqa: E402
from fits.interval import method_error, scale_up_shape  # noqa: E402
from fits.sweep import run_sweep  # noqa: E402

CORPORA = {"colpret": ROOT.parent / "shared" / "corpus" / "colpret.csv.gz",
           "extra": ROOT.parent / "shared" / "corpus" / "extra" / "observations.csv.gz"}
LEVELS = (0.5, 0.8, 0.9)
TABLE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cum, q), len(values) - 1)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", choices=sorted(CORPORA), default=sorted(CORPORA))
    parser.add_argument("--n-boot", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    frame = load_frames([CORPORA[c] for c in args.corpus])
    sweep = run_sweep(frame, jobs=args.jobs)
    model = fit_error_model(sweep)
    sources = frame.groupby("family")["source"].first()
    held_models = {}
    per_family = {}
    for family in fits.eligible_families(frame):
        part = frame[frame["family"] == family]
        train, target = fits.split_target(part)
        src = sources[family]
        if src not in held_models:
            held_models[src] = model_without(sweep, src, model)
        fitted = fits.fit(train)
        n, d, y = target["params"].to_numpy(), target["tokens"].to_numpy(), target["value"].to_numpy()
        inside = {}
        pred = fitted.predict(n, d)
        ly = np.abs(np.log(y / pred))
        for c in LEVELS:
            stat = fitted.interval(n, d, coverage=c, n_boot=args.n_boot, method_error=False)
            h_stat = np.log(stat.upper / stat.prediction)
            h_table = method_error(c, n / train["params"].max())
            design = pd.DataFrame([fitted.design(a, b) for a, b in zip(n, d)])
            h_em = np.log1p(held_models[src].are_quantile(design, c, level="fit"))
            combos = {"bootstrap alone": h_stat, "table alone": h_table, "error model alone": h_em,
                      "table + bootstrap (quadrature)": np.hypot(h_table, h_stat),
                      "max(table, bootstrap)": np.maximum(h_table, h_stat),
                      "error model + bootstrap (quadrature)": np.hypot(h_em, h_stat),
                      "max(error model, bootstrap)": np.maximum(h_em, h_stat)}
            for label, h in combos.items():
                inside[(label, c)] = float(np.mean(ly <= h))
        scale = n[0] / train["params"].max()
        per_family[family] = {"source": src, "inside": inside,
                              "norm_err": np.abs(np.log(y / pred)) / scale_up_shape(scale)}
    names = list(per_family)
    weights = family_weights(pd.DataFrame({"family": names, "source": [per_family[f]["source"] for f in names]}))
    print(f"{len(names)} families of {len(set(sources[names]))} sources, {time.perf_counter() - started:.0f} s")
    print("coverage of the target's checkpoints (families weighing the same, sources capped at six families):")
    for label in sorted({k[0] for k in per_family[names[0]]["inside"]}):
        cells = [f"nominal {c:.0%}: {np.average([per_family[f]['inside'][(label, c)] for f in names], weights=weights):.3f}"
                 for c in LEVELS]
        print(f"  {label:<38} " + "   ".join(cells))
    errs = np.concatenate([per_family[f]["norm_err"] for f in names])
    w = np.concatenate([np.full(per_family[f]["norm_err"].size, wt / per_family[f]["norm_err"].size)
                        for f, wt in zip(names, weights)])
    print("method-error table (coverage -> quantile of |log error| / scale-up shape), all families:")
    print("  " + "  ".join(f"{c:.2f}: {weighted_quantile(errs, w, c):.4f}" for c in TABLE_LEVELS))
    hits = {c: [] for c in LEVELS}
    for f, wt in zip(names, weights):
        rest = [g for g in names if per_family[g]["source"] != per_family[f]["source"]]
        e = np.concatenate([per_family[g]["norm_err"] for g in rest])
        ww = np.concatenate([np.full(per_family[g]["norm_err"].size, 1 / per_family[g]["norm_err"].size) for g in rest])
        for c in LEVELS:
            hits[c].append((np.mean(per_family[f]["norm_err"] <= weighted_quantile(e, ww, c)), wt))
    print("the table's term alone, each family's source left out of the table:")
    print("  " + "   ".join(f"nominal {c:.0%}: {np.average([h for h, _ in v], weights=[x for _, x in v]):.3f}"
                            for c, v in hits.items()))


if __name__ == "__main__":
    main()
