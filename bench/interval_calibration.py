"""Re-derive the method-error table of fits/interval.py and print the coverage it gives.

For every family of the backtest protocol: fit the default method, take the
target checkpoints' |log(actual / predicted)| normalised by the scale-up shape,
and report (1) the empirical quantiles, each family weighing one (the table in
fits.interval.METHOD_ERROR_QUANTILES), and (2) the share of target checkpoints
(families weighing one) that fall inside fits.predict_interval's intervals at
50/80/90% coverage - in-sample for the table, so also (3) leave-one-family-out:
the table rebuilt without the family it is scored on.

    python bench/interval_calibration.py [CORPUS] [--n-boot 30]
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fits.backtest import eligible_families, split_target  # noqa: E402
from fits.data import load_primary  # noqa: E402
from fits.interval import prediction_interval, scale_up_shape  # noqa: E402

COVERAGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cum, q), len(values) - 1)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "colpret.csv.gz"
    parser.add_argument("corpus", nargs="?", default=str(default))
    parser.add_argument("--n-boot", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = load_primary(args.corpus)
    started = time.perf_counter()
    per_family = {}
    for family in eligible_families(frame):
        train, target = split_target(frame[frame["family"] == family])
        out = {}
        for c in (0.5, 0.8, 0.9):
            iv = prediction_interval(train, target["params"].to_numpy(), target["tokens"].to_numpy(), coverage=c,
                                     n_boot=args.n_boot)
            out[c] = (iv.lower, iv.upper)
        pred = iv.prediction
        actual = target["value"].to_numpy()
        scale = target["params"].iloc[0] / train["params"].max()
        per_family[family] = {
            "norm_err": np.abs(np.log(actual / pred)) / scale_up_shape(scale),
            "inside": {c: np.mean((actual >= lo) & (actual <= hi)) for c, (lo, hi) in out.items()},
        }
    errs = np.concatenate([v["norm_err"] for v in per_family.values()])
    weights = np.concatenate([np.full(v["norm_err"].size, 1 / v["norm_err"].size) for v in per_family.values()])
    print(f"{len(per_family)} families, {time.perf_counter() - started:.1f} s")
    print("method-error table (coverage -> quantile of normalised |log error|):")
    for c in COVERAGES:
        print(f"  {c:.2f}  {weighted_quantile(errs, weights, c):.4f}")
    print("coverage of fits.predict_interval (in-sample table):")
    for c in (0.5, 0.8, 0.9):
        print(f"  nominal {c:.2f}  realised {np.mean([v['inside'][c] for v in per_family.values()]):.3f}")
    # Leave one family out: would the family fall inside an interval built without it?
    hits = {c: [] for c in (0.5, 0.8, 0.9)}
    for family, v in per_family.items():
        rest = [u for f, u in per_family.items() if f != family]
        e = np.concatenate([u["norm_err"] for u in rest])
        w = np.concatenate([np.full(u["norm_err"].size, 1 / u["norm_err"].size) for u in rest])
        for c in hits:
            hits[c].append(np.mean(v["norm_err"] <= weighted_quantile(e, w, c)))
    print("coverage of the method-error term alone, leave-one-family-out:")
    for c, h in hits.items():
        print(f"  nominal {c:.2f}  realised {np.mean(h):.3f}")


if __name__ == "__main__":
    main()
