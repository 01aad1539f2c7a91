"""The error model: what ARE to expect from a design, learned from the sweep's backtested laws.

Each sweep row is a design (sizes trained, scale-up to the target, share of
the target's compute spent, tokens per model, fraction of training seen)
applied to a corpus family, with the ARE it realised. The model predicts the
10th, 50th and 90th percentile of log(ARE) by linear quantile regression with
sign constraints on the design effects (a linear program, SciPy's HiGHS).

Two levels, for the two moments a team asks:

* **plan** - before any small model is trained: design features only. Families
  differ far more than designs do, so this band is wide.
* **fit** - once the design's runs exist: the design plus what the runs
  themselves say about how lawful the family is - the fit's residual spread,
  and the error of the fit's own rollout (the largest trained size predicted
  from the smaller ones, :class:`fits.method.AutoMethod`). This band is sharp
  where the family is regular and wide where it is not.

Validation holds out whole *sources* (papers): families of one paper share
recipe, data and code, so leaving out one family at a time would flatter the
model. A conformal margin, chosen on the held-out residuals with every family
weighing the same, widens each band to cover ~80% of held-out families' cases.
Outside the ranges its sweep covered (scale-up, compute share, tokens per
model, ...) a design's band widens further and the prediction says which
features were outside.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linprog
from scipy.stats import norm
from scipy.sparse import csr_matrix, hstack, identity

from .jsonsafe import json_safe

ERROR_MODEL_VERSION = 2
QUANTILES = (0.1, 0.5, 0.9)
TARGET_COVERAGE = 0.8
DESIGN_FEATURES = (
    "log_scale_up",
    "single_model",
    "n_models",
    "log_compute_share",
    "fraction",
    "log_tokens_per_model",
    "log_max_epochs",
    "has_curves",
)
EVIDENCE_FEATURES = ("log_fit_rmse", "log_rollout_are", "no_rollout", "rollout_x_scale_up")
LEVELS = {"plan": DESIGN_FEATURES, "fit": DESIGN_FEATURES + EVIDENCE_FEATURES}
# Features whose training range is checked (the others are indicators or bounded).
RANGE_FEATURES = ("log_scale_up", "n_models", "log_compute_share", "log_tokens_per_model", "log_max_epochs")
ARE_FLOOR = 1e-5  # realised AREs below this are treated as this (log of 0 is not a number)
ARE_CAP = 10.0
RMSE_FLOOR = 1e-4

# Signs the effects must have, from what is known of scaling-law fits (the paper's findings): more models,
# a larger largest model, more compute and more of each run seen never make the expected error worse; a
# noisier fit or a worse rollout never makes it better. Without these the regression reads between-family
# differences as design effects (families that afford many models are also the hard ones in the corpus).
SIGN_CONSTRAINTS = {
    "log_scale_up": (0.0, None),
    "single_model": (0.0, None),
    "n_models": (None, 0.0),
    "log_compute_share": (None, 0.0),
    "fraction": (None, 0.0),
    # Repeated data makes losses less predictable, never more: unconstrained, a model that never saw the
    # repeated-data families (left out with their paper) learned the opposite from the few others that repeat.
    "log_max_epochs": (0.0, None),
    "log_fit_rmse": (0.0, None),
    "log_rollout_are": (0.0, None),
}


def design_features(designs: pd.DataFrame) -> pd.DataFrame:
    """Design features from design columns (as in the sweep table or a plan's candidates).

    Needs ``scale_up, n_models, train_compute_share, fraction, tokens_per_model``; ``max_epochs``
    (default 1: no repeated data) and ``has_curves`` (default True) are optional.
    """
    n = len(designs)

    def col(name, default):
        return designs[name].astype(float).to_numpy() if name in designs.columns else np.full(n, default)

    return pd.DataFrame({
        "log_scale_up": np.log(np.maximum(col("scale_up", 1.0), 1.0)),
        # One size cannot extrapolate in size at all (token-only law): its own level.
        "single_model": (col("n_models", 1.0) == 1).astype(float),
        "n_models": col("n_models", 1.0),
        "log_compute_share": np.log(np.clip(col("train_compute_share", 1e-3), 1e-6, None)),
        "fraction": col("fraction", 1.0),
        "log_tokens_per_model": np.log(np.clip(col("tokens_per_model", 1e9), 1.0, None)),
        "log_max_epochs": np.log(np.maximum(col("max_epochs", 1.0), 1.0)),
        "has_curves": col("has_curves", 1.0),
    }, index=designs.index)


def has_evidence(designs: pd.DataFrame) -> np.ndarray:
    """Rows whose fit statistics are known (a design whose runs were fitted)."""
    if "rmse_log" not in designs.columns:
        return np.zeros(len(designs), dtype=bool)
    return np.isfinite(pd.to_numeric(designs["rmse_log"], errors="coerce").to_numpy(dtype=float))


def features(designs: pd.DataFrame, level: str) -> pd.DataFrame:
    """The feature matrix of ``level`` ("plan" or "fit")."""
    x = design_features(designs)
    if level == "fit":
        rmse = pd.to_numeric(designs.get("rmse_log", np.nan), errors="coerce")
        rollout = pd.to_numeric(designs.get("rollout_are", np.nan), errors="coerce")
        rmse = np.asarray(rmse, dtype=float) * np.ones(len(designs))
        rollout = np.asarray(rollout, dtype=float) * np.ones(len(designs))
        known = np.isfinite(rollout)
        x["log_fit_rmse"] = np.log(np.maximum(np.nan_to_num(rmse, nan=RMSE_FLOOR), RMSE_FLOOR))
        x["log_rollout_are"] = np.where(known, np.log(np.maximum(np.nan_to_num(rollout, nan=1.0), ARE_FLOOR)), 0.0)
        x["no_rollout"] = (~known).astype(float)
        # The rollout's error says more the farther the design extrapolates (measured: p90/p10 15.7 -> 14.1).
        x["rollout_x_scale_up"] = x["log_rollout_are"] * x["log_scale_up"]
    return x[list(LEVELS[level])]


@dataclass
class ErrorModel:
    """Quantiles of expected ARE as a function of the design (and, once runs exist, the fit). JSON via to_dict."""

    coefficients: dict  # level -> quantile (str) -> {"intercept": float, "coef": [float, ...]}
    margin: dict  # level -> [below, above]: conformal widening of the log p10 and p90 (each >= 0; a number: both)
    ranges: dict = field(default_factory=dict)  # feature -> [lo, hi] the sweep covered
    widen_per_unit: float = 0.0  # log-band widening per unit of feature outside its range (per side)
    trained_on: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    version: int = ERROR_MODEL_VERSION

    def level_of(self, designs: pd.DataFrame, level: str | None = None) -> np.ndarray:
        """Each design's level: ``level`` when given, else "fit" where its fit statistics are known."""
        if level is not None:
            if level not in LEVELS:
                raise ValueError(f"level must be one of {sorted(LEVELS)}, not {level!r}")
            return np.full(len(designs), level)
        return np.where(has_evidence(designs), "fit", "plan")

    def outside(self, designs: pd.DataFrame) -> tuple[np.ndarray, list[list[str]]]:
        """Per design: how far (in feature units) it lies outside the sweep's ranges, and which features."""
        x = design_features(designs)
        dist = np.zeros(len(designs))
        names = [[] for _ in range(len(designs))]
        for feat, (lo, hi) in self.ranges.items():
            v = x[feat].to_numpy()
            d = np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0)
            dist += d
            for i in np.flatnonzero(d > 1e-9):
                names[i].append(feat)
        return dist, names

    def predict_log(self, designs: pd.DataFrame, level: str | None = None) -> pd.DataFrame:
        out = pd.DataFrame(index=designs.index, columns=["p10", "p50", "p90"], dtype=float)
        level = self.level_of(designs, level)
        for lev in ("plan", "fit"):
            rows = level == lev
            if not rows.any():
                continue
            x = features(designs[rows], lev).to_numpy()
            q = {}
            for quantile in QUANTILES:
                c = self.coefficients[lev][str(quantile)]
                q[quantile] = c["intercept"] + x @ np.asarray(c["coef"])
            lo, mid, hi = np.sort(np.vstack([q[0.1], q[0.5], q[0.9]]), axis=0)
            margin = self.margin[lev]
            below, above = (margin, margin) if np.isscalar(margin) else margin
            out.loc[rows, "p10"] = lo - below
            out.loc[rows, "p50"] = mid
            out.loc[rows, "p90"] = hi + above
        dist, _ = self.outside(designs)
        widen = self.widen_per_unit * dist
        out["p10"] -= widen
        out["p90"] += widen
        return out

    def predict(self, designs: pd.DataFrame, level: str | None = None) -> pd.DataFrame:
        """p10, p50, p90 of the ARE each design should expect (fractions, 0.01 = 1%), its level, what is outside.

        ``level``: "plan" (design only) or "fit" (with the fit's statistics); default: "fit" where the
        designs carry them (``rmse_log``, ``rollout_are``).

        Capped at ARE_CAP: far outside the corpus the linear model would overflow,
        and an expected error above 1000% says all there is to say.
        """
        logq = self.predict_log(designs, level)
        out = np.exp(logq.clip(upper=np.log(ARE_CAP)))
        out["level"] = self.level_of(designs, level)
        out["outside"] = self.outside(designs)[1]
        return out

    def are_quantile(self, designs: pd.DataFrame, prob: float, level: str | None = None) -> np.ndarray:
        """The ARE each design should stay under with probability ``prob``.

        Between and beyond the model's p10, p50 and p90, log ARE is interpolated (extrapolated) linearly
        in the normal score of the probability: the band's own shape decides the tails.
        """
        if not 0 < prob < 1:
            raise ValueError(f"prob must be between 0 and 1, not {prob}")
        logq = self.predict_log(designs, level).clip(upper=np.log(ARE_CAP)).to_numpy()
        z = norm.ppf(np.array(QUANTILES))
        zp = norm.ppf(prob)
        lo, hi = (0, 1) if zp <= z[1] else (1, 2)
        slope = (logq[:, hi] - logq[:, lo]) / (z[hi] - z[lo])
        return np.exp(np.minimum(logq[:, lo] + slope * (zp - z[lo]), np.log(ARE_CAP)))

    def to_dict(self) -> dict:
        return json_safe({
            "version": self.version,
            "features": {lev: list(f) for lev, f in LEVELS.items()},
            "quantiles": list(QUANTILES),
            "coefficients": self.coefficients,
            "margin": self.margin,
            "ranges": self.ranges,
            "widen_per_unit": self.widen_per_unit,
            "trained_on": self.trained_on,
            "validation": self.validation,
        })

    @classmethod
    def from_dict(cls, data: dict) -> "ErrorModel":
        want = {lev: list(f) for lev, f in LEVELS.items()}
        if data.get("version") != ERROR_MODEL_VERSION or data.get("features") != want:
            raise ValueError(
                f"error model version {data.get('version')!r} with features {data.get('features')!r} does not "
                f"match this library (version {ERROR_MODEL_VERSION}); rebuild it"
            )
        return cls(coefficients=data["coefficients"],
                   margin={k: v if np.isscalar(v) else list(v) for k, v in data["margin"].items()}, ranges=dict(data["ranges"]),
                   widen_per_unit=float(data["widen_per_unit"]), trained_on=data.get("trained_on", {}),
                   validation=data.get("validation", {}))


# ---------------------------------------------------------------------------
# learning


def usable_rows(sweep: pd.DataFrame) -> pd.DataFrame:
    """Sweep rows a model can learn from: a finite realised ARE."""
    rows = sweep[np.isfinite(sweep["are"].astype(float))].copy()
    return rows.reset_index(drop=True)


def groups_of(rows: pd.DataFrame) -> np.ndarray:
    """What validation holds out together: the row's source (paper) where known, else its family."""
    if "source" in rows.columns:
        src = rows["source"].fillna("").astype(str).to_numpy()
        return np.where(src != "", src, rows["family"].astype(str).to_numpy())
    return rows["family"].astype(str).to_numpy()


def _quantile_regression(x: np.ndarray, y: np.ndarray, q: float, bounds, weights) -> tuple[float, np.ndarray]:
    """Weighted linear quantile regression with bounds on the coefficients, as a linear program (HiGHS).

    min sum w (q u+ + (1 - q) u-)  s.t.  b0 + X b + u+ - u- = y,  u+, u- >= 0.
    """
    n, k = x.shape
    cost = np.concatenate([np.zeros(k + 1), q * weights, (1 - q) * weights])
    a_eq = hstack([csr_matrix(np.column_stack([np.ones(n), x])), identity(n), -identity(n)], format="csr")
    var_bounds = [(None, None)] + list(bounds) + [(0, None)] * (2 * n)
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=var_bounds, method="highs")
    if not res.success:
        raise RuntimeError(f"quantile regression did not solve: {res.message}")
    return float(res.x[0]), res.x[1: k + 1]


# A source (paper) counts for at most this many families: one paper's 21 ablation families must not decide what
# a family from another paper should expect (the held-back check itself takes at most 6 families per source).
FAMILIES_PER_SOURCE = 6


def family_weights(rows: pd.DataFrame) -> np.ndarray:
    """Per row: each family weighs the same in total (a family with 400 designs does not drown one with 10),
    and a source with more than ``FAMILIES_PER_SOURCE`` families is scaled down to that many."""
    fam = rows["family"].astype(str)
    groups = pd.Series(groups_of(rows), index=rows.index)
    families_in_group = groups.map(fam.groupby(groups).nunique())
    return ((1.0 / fam.map(fam.value_counts())) * np.minimum(1.0, FAMILIES_PER_SOURCE / families_in_group)).to_numpy()


def _fit_quantiles(rows: pd.DataFrame, level: str) -> dict:
    names = LEVELS[level]
    bounds = [SIGN_CONSTRAINTS.get(name, (None, None)) for name in names]
    x = features(rows, level).to_numpy()
    # A feature that never varies in the training rows says nothing: its coefficient is held at 0 (else the
    # linear program may trade it against the intercept arbitrarily).
    bounds = [(0.0, 0.0) if np.ptp(x[:, j]) == 0 else b for j, b in enumerate(bounds)]
    y = _target(rows)
    w = family_weights(rows)
    w = w / w.mean()
    out = {}
    for q in QUANTILES:
        intercept, coef = _quantile_regression(x, y, q, bounds, w)
        out[str(q)] = {"intercept": intercept, "coef": [float(v) for v in coef]}
    return out


def _target(rows: pd.DataFrame) -> np.ndarray:
    return np.log(np.maximum(rows["are"].astype(float).to_numpy(), ARE_FLOOR))


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cum, q), values.size - 1)])


def _conformal_margins(held: pd.DataFrame, level: str, weights: np.ndarray, coverage: float) -> list[float]:
    """Widenings of p10 and of p90 so that, by weight, (1 - coverage) / 2 of the held-out cases fall below
    the band and as many above it (one-sided split-conformal quantiles; the two tails differ)."""
    if held.empty:
        return [0.0, 0.0]
    side = 1 - (1 - coverage) / 2
    below = _weighted_quantile((held[f"{level}_p10"] - held["log_are"]).to_numpy(), weights, side)
    above = _weighted_quantile((held["log_are"] - held[f"{level}_p90"]).to_numpy(), weights, side)
    return [max(below, 0.0), max(above, 0.0)]


def _ranges(rows: pd.DataFrame) -> dict:
    x = design_features(rows)
    return {f: [float(x[f].min()), float(x[f].max())] for f in RANGE_FEATURES}


def held_out_predictions(rows: pd.DataFrame, *, progress=None) -> pd.DataFrame:
    """For each group (source), quantiles of every level from models that never saw it (no margins)."""
    groups = groups_of(rows)
    names = sorted(set(groups))
    out = []
    for i, g in enumerate(names):
        held = groups == g
        coefs = {lev: _fit_quantiles(rows[~held], lev) for lev in LEVELS}
        model = ErrorModel(coefficients=coefs, margin={lev: [0.0, 0.0] for lev in LEVELS})
        part = rows[held]
        pred = {}
        for lev in LEVELS:
            logq = _predict_level(model, part, lev)
            for col in ("p10", "p50", "p90"):
                pred[f"{lev}_{col}"] = logq[col]
        frame = pd.DataFrame(pred, index=part.index)
        frame["family"] = part["family"].to_numpy()
        frame["group"] = g
        frame["log_are"] = _target(part)
        out.append(frame)
        if progress:
            progress(i + 1, len(names), g)
    return pd.concat(out).sort_index()


def _predict_level(model: ErrorModel, designs: pd.DataFrame, level: str) -> pd.DataFrame:
    x = features(designs, level).to_numpy()
    q = [model.coefficients[level][str(quantile)]["intercept"]
         + x @ np.asarray(model.coefficients[level][str(quantile)]["coef"]) for quantile in QUANTILES]
    lo, mid, hi = np.sort(np.vstack(q), axis=0)
    return pd.DataFrame({"p10": lo, "p50": mid, "p90": hi}, index=designs.index)


def validation_figures(held: pd.DataFrame, level: str, margin) -> dict:
    """Held-out figures of one level, each family weighing the same where it says so."""
    below, above = (margin, margin) if np.isscalar(margin) else margin
    lo, mid, hi = held[f"{level}_p10"] - below, held[f"{level}_p50"], held[f"{level}_p90"] + above
    y = held["log_are"]
    inside = (y >= lo) & (y <= hi)
    by_family = pd.DataFrame({"inside": inside, "ratio": (mid - y).abs(), "width": hi - lo, "family": held["family"]})
    per_family = by_family.groupby("family").agg(inside=("inside", "mean"), ratio=("ratio", "median"),
                                                 width=("width", "median"))
    return {
        "coverage": float(inside.mean()),
        "coverage_family_weighted": float(per_family["inside"].mean()),
        "median_abs_log_ratio": float(per_family["ratio"].median()),
        "median_p90_over_p10": float(np.exp(min(per_family["width"].median(), 700.0))),
        "cases": int(len(held)),
        "families": int(held["family"].nunique()),
        "groups": int(held["group"].nunique()),
    }


def fit_error_model(sweep: pd.DataFrame, *, coverage: float = TARGET_COVERAGE, progress=None) -> ErrorModel:
    """Learn the error model from a sweep table; validate it leaving one source (paper) out at a time.

    The conformal margins are chosen on the held-out scores (one scalar per
    level), so the reported coverage is calibrated on the same held-out
    predictions; ``calibrate`` on a separate TEST corpus is the clean check.
    """
    started = time.perf_counter()
    rows = usable_rows(sweep)
    if rows["family"].nunique() < 3:
        raise ValueError("an error model needs sweep rows from at least 3 families")
    if len(set(groups_of(rows))) < 2:
        raise ValueError("an error model needs sweep rows from at least 2 sources to be validated")
    held = held_out_predictions(rows, progress=progress)
    weights = family_weights(rows.loc[held.index])
    margins, validation = {}, {"method": "leave-one-source-out"}
    for lev in LEVELS:
        margins[lev] = _conformal_margins(held, lev, weights, coverage)
        validation[lev] = validation_figures(held, lev, margins[lev])
    # The plan level's figures at the top: what a plan's expected ARE is validated by.
    validation.update({k: v for k, v in validation["plan"].items()})
    coefs = {lev: _fit_quantiles(rows, lev) for lev in LEVELS}
    # Outside its ranges a design widens by the typical held-out band (plan level) per unit of feature distance.
    widen = float(np.median(held["plan_p90"] - held["plan_p10"]) / 2 + np.mean(margins["plan"]))
    return ErrorModel(
        coefficients=coefs,
        margin=margins,
        ranges=_ranges(rows),
        widen_per_unit=widen,
        trained_on={"rows": int(len(rows)), "families": int(rows["family"].nunique()),
                    "groups": int(len(set(groups_of(rows)))), "seconds": round(time.perf_counter() - started, 2)},
        validation=validation,
    )


def model_without(sweep: pd.DataFrame, group: str, model: ErrorModel) -> ErrorModel:
    """``model`` refitted without one group's rows (a source, or a family), margins and ranges kept."""
    rows = usable_rows(sweep)
    keep = groups_of(rows) != group
    rows = rows[keep & (rows["family"].astype(str) != group)]
    coefs = {lev: _fit_quantiles(rows, lev) for lev in LEVELS}
    return ErrorModel(coefficients=coefs, margin=dict(model.margin), ranges=dict(model.ranges),
                      widen_per_unit=model.widen_per_unit, trained_on=dict(model.trained_on),
                      validation=dict(model.validation))


def calibrate(train_sweep: pd.DataFrame, test_sweep: pd.DataFrame, *, model: ErrorModel | None = None,
              progress=None) -> dict:
    """Learn from TRAIN's sweep, predict every TEST design, compare with the ARE it realised.

    A TEST family whose source (or, without sources, whose name) is also in
    TRAIN is predicted by a model refitted without that whole source, so
    passing the same corpus twice gives the leave-one-source-out check.
    Figures weigh every family the same, floor realised ARE at 0.01%, and are
    given for the fit level (the design's runs are known: the prediction a
    team gets once it trained them) and the plan level (design only).
    """
    model = model or fit_error_model(train_sweep)
    train_rows = usable_rows(train_sweep)
    train_groups = set(groups_of(train_rows)) | set(train_rows["family"].astype(str))
    test = usable_rows(test_sweep)
    test_groups = groups_of(test)
    out_rows = []
    names = sorted(set(test["family"].astype(str)))
    cache = {}
    for i, family in enumerate(names):
        part = test[test["family"].astype(str) == family]
        group = test_groups[part.index[0]]
        key = group if group in train_groups else (family if family in train_groups else None)
        if key is not None and key not in cache:
            cache[key] = model_without(train_sweep, key, model)
        em = cache[key] if key is not None else model
        pred = em.predict(part)
        plan = em.predict(part, level="plan")
        for (_, row), (_, p), (_, pp) in zip(part.iterrows(), pred.iterrows(), plan.iterrows()):
            out_rows.append({
                "family": family,
                "source": group,
                "design": json_safe({k: row[k] for k in ("n_models", "largest_index", "fraction", "scale_up",
                                                         "train_compute_share", "tokens_per_model") if k in row}),
                "predicted": {"p10": float(p["p10"]), "p50": float(p["p50"]), "p90": float(p["p90"]),
                              "level": p["level"], "outside": list(p["outside"])},
                "predicted_plan": {"p10": float(pp["p10"]), "p50": float(pp["p50"]), "p90": float(pp["p90"])},
                "realized_are": float(row["are"]),
            })
        if progress:
            progress(i + 1, len(names), family)
    summary = {"fit": _calibration_figures(out_rows, "predicted"), "plan": _calibration_figures(out_rows, "predicted_plan")}
    return {
        **summary["fit"],
        "plan_level": summary["plan"],
        "families": len(names),
        "model": {"trained_on": model.trained_on, "validation": model.validation, "margin": model.margin},
        "rows": out_rows,
    }


def _calibration_figures(rows: list[dict], key: str) -> dict:
    if not rows:
        return {"coverage": float("nan"), "cases": 0}
    df = pd.DataFrame({
        "family": [r["family"] for r in rows],
        "y": np.maximum([r["realized_are"] for r in rows], 1e-4),
        "lo": [r[key]["p10"] for r in rows], "mid": [r[key]["p50"] for r in rows], "hi": [r[key]["p90"] for r in rows],
    })
    df["inside"] = (df["y"] >= df["lo"]) & (df["y"] <= df["hi"])
    df["ratio"] = np.abs(np.log(df["mid"] / df["y"]))
    df["width"] = df["hi"] / df["lo"]
    per = df.groupby("family").agg(inside=("inside", "mean"), ratio=("ratio", "median"), width=("width", "median"))
    return {
        "coverage": float(per["inside"].mean()),
        "coverage_rows": float(df["inside"].mean()),
        "median_abs_log_ratio": float(per["ratio"].median()),
        "median_p90_over_p10": float(per["width"].median()),
        "cases": int(len(df)),
    }
