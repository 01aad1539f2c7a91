"""What a fit found: the law, its parameters and errors, and how to evaluate it again.

A :class:`FitResult` is plain data: ``to_dict()`` gives versioned JSON types
(for a JSONField or a file) and ``from_dict()`` rebuilds it, so a stored law can
be evaluated without refitting.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .jsonsafe import json_safe
from .laws import LawForm, effective_tokens, evaluate, extra_columns, form_named
from .posterior import ExponentPrior

RESULT_VERSION = 2


@dataclass
class FitResult:
    """What a fit found. ``success`` is False (with a ``message``) when it did not converge.

    ``coef``/``alpha``/``beta`` are the reported law (the posterior's mode when
    a prior was used, else the robust fit). ``mixture`` (when a prior was used)
    holds the laws of the exponent grid and their posterior weights;
    :meth:`predict` averages them in log space.
    """

    form: LawForm
    success: bool
    message: str
    coef: np.ndarray  # E, A, B, extra terms, in normalised units (see laws.py)
    alpha: float
    beta: float
    n0: float
    d0: float
    stderr: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0
    nfev: int = 0
    overfit_shape: tuple[float, float] | None = None
    overfit_nu0: float = 1.0
    mixture: dict | None = None  # {"weight": (K,), "alpha": (K,), "beta": (K,), "coef": (K, k)}
    prior: ExponentPrior | None = None

    # -- predictions ---------------------------------------------------------
    def inputs(self, params, tokens, epochs=None, run_tokens=None):
        """(shape, log(N/N0), log(D'/D0), extra columns) of flat targets; ``shape`` is the targets' shape."""
        params, tokens = np.broadcast_arrays(np.asarray(params, dtype=float), np.asarray(tokens, dtype=float))
        shape = params.shape
        params, tokens = params.ravel(), tokens.ravel()
        if epochs is not None:
            epochs = np.broadcast_to(np.asarray(epochs, dtype=float), shape).ravel()
        if run_tokens is not None:
            run_tokens = np.broadcast_to(np.asarray(run_tokens, dtype=float), shape).ravel()
        d = effective_tokens(tokens, epochs) if self.form.data_constrained else tokens
        extra = extra_columns(self.form, params, tokens, epochs, run_tokens, self.overfit_shape, self.overfit_nu0)
        return shape, np.log(params / self.n0), np.log(d / self.d0), extra

    def predict(self, params, tokens, epochs=None, run_tokens=None) -> np.ndarray:
        """Predicted loss. ``run_tokens``: final tokens of each target's run (missing = the target ends its run)."""
        shape, ln, ld, extra = self.inputs(params, tokens, epochs, run_tokens)
        if not self.mixture:
            return evaluate(self.form, self.coef, ln, ld, self.alpha, self.beta, extra).reshape(shape)
        # Every component at once, averaged in log space by posterior weight.
        pred = evaluate(self.form, self.mixture["coef"], ln, ld, np.asarray(self.mixture["alpha"]),
                        np.asarray(self.mixture["beta"]), extra)
        log_mean = np.asarray(self.mixture["weight"], dtype=float) @ np.log(np.maximum(pred, 1e-300))
        return np.exp(log_mean).reshape(shape)

    # -- reporting ------------------------------------------------------------
    @property
    def params(self) -> dict:
        """Parameters in the usual un-normalised form L = E + A/N^alpha + B/D^beta (+ extra terms)."""
        out = {"E": float(self.coef[0])}
        i = 1
        if self.form.size_term:
            out["A"] = float(self.coef[i] * self.n0**self.alpha)
            out["alpha"] = float(self.alpha)
            i += 1
        if self.form.data_term:
            out["B"] = float(self.coef[i] * self.d0**self.beta)
            out["beta"] = float(self.beta)
            i += 1
        for name in self.form.extra_names:
            out[name] = float(self.coef[i])
            i += 1
        return out

    def to_dict(self) -> dict:
        return json_safe({
            "version": RESULT_VERSION,
            "law": self.form.name,
            "formula": self.form.formula,
            "success": bool(self.success),
            "message": self.message,
            "params": self.params,
            "normalised": {
                "coef": self.coef,
                "alpha": self.alpha,
                "beta": self.beta,
                "n0": self.n0,
                "d0": self.d0,
                "overfit_shape": self.overfit_shape,
                "overfit_nu0": self.overfit_nu0,
            },
            "mixture": self.mixture or None,
            "prior": None if self.prior is None else self.prior.to_dict(),
            "stderr": self.stderr,
            "stats": self.stats,
            "seconds": self.seconds,
            "nfev": self.nfev,
        })

    @classmethod
    def from_dict(cls, data: dict) -> "FitResult":
        """Rebuild a result saved by :meth:`to_dict` (versions 1 and 2), to evaluate it again."""
        if data.get("version") not in (1, RESULT_VERSION):
            raise ValueError(f"fit result version {data.get('version')!r} is not one this library reads")
        norm = data["normalised"]
        shape = norm.get("overfit_shape")
        mix = data.get("mixture")
        return cls(
            form=form_named(data["law"]), success=bool(data["success"]), message=data["message"],
            coef=np.asarray(norm["coef"], dtype=float), alpha=float(norm["alpha"]), beta=float(norm["beta"]),
            n0=float(norm["n0"]), d0=float(norm["d0"]), stderr=dict(data.get("stderr", {})),
            stats=dict(data.get("stats", {})), seconds=float(data.get("seconds", 0.0)), nfev=int(data.get("nfev", 0)),
            overfit_shape=None if shape is None else (float(shape[0]), float(shape[1])),
            overfit_nu0=float(norm.get("overfit_nu0", 1.0)),
            mixture=None if not mix else {k: np.asarray(v, dtype=float) for k, v in mix.items()},
            prior=None if data.get("prior") is None else ExponentPrior(**data["prior"]),
        )
