"""The error model shipped with the code, the corpus fingerprint that says which corpus it was built from, and
what a starting server does about its error model.

Building an error model takes minutes (a sweep of backtests over the corpus), so the repository carries one
for the shipped corpus (../shared/corpus: ColPret and the extra ladders), made by ``python -m fits calibrate
--save-model`` (``manage.py ship_error_model`` remakes it), with the fingerprint of that corpus. A starting
server (``manage.py ensure_error_model``, run by scripts/serve after loading the corpus) compares the
database's corpus with it: the same corpus and no active error model -> the shipped one is stored and
activated at once; another corpus, or an active model built from a corpus that has changed since -> a
rebuild (a sweep job) is queued and the plan form shows its progress.

The fingerprint covers what an error model learns from: each family's primary-metric observations of the
families not excluded from fitting (``planner.corpus.selectors.primary_frame``; from files,
``fits.load_primary``, the same rows). It counts families, runs and observations and hashes every row's
family, model, seed, params, tokens, value and epochs (numbers to 12 significant digits, so a value stored by
one database and read back by another hashes alike).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from fits import ErrorModel, eligible_families, load_primary

from ..corpus.selectors import primary_frame
from ..jobs.services import JobEnqueueError
from .fingerprint import corpus_fingerprint
from .services import error_model_active, error_model_rebuild, error_model_store, sweep_enqueue

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_MODEL = SHIPPED_DIR / "error_model.json"
SHIPPED_FINGERPRINT = SHIPPED_DIR / "fingerprint.json"
MIN_FAMILIES = 3  # an error model needs at least this many families a backtest can use (errormodels.services)


def database_fingerprint(frame: pd.DataFrame | None = None) -> dict:
    """The fingerprint of the corpus in the database (what a sweep over all families learns from)."""
    return corpus_fingerprint(primary_frame() if frame is None else frame)


def files_fingerprint(paths) -> dict:
    """The fingerprint of canonical corpus files (each with the families.csv beside it), as one corpus."""
    return corpus_fingerprint(pd.concat([load_primary(Path(p)) for p in paths], ignore_index=True))


def shipped() -> tuple[dict, dict]:
    """(the shipped error model as ErrorModel.to_dict(), the shipped fingerprint's file). Raises OSError,
    ValueError (and KeyError, TypeError) when missing or not readable by this library."""
    model = json.loads(SHIPPED_MODEL.read_text())
    ErrorModel.from_dict(model)
    about = json.loads(SHIPPED_FINGERPRINT.read_text())
    return model, about


def error_model_ensure(*, created_by=None) -> str:
    """What a starting server does about its error model (see the module's docstring); returns what it did,
    in a sentence for the log. Never raises for an unreachable queue: it says so instead."""
    frame = primary_frame()
    if frame.empty:
        return "error model: no corpus loaded, nothing to build one from"
    fingerprint = corpus_fingerprint(frame)
    active = error_model_active()
    if active is not None:
        if active.corpus_fingerprint in (None, fingerprint):
            built = "from this corpus" if active.corpus_fingerprint else "elsewhere (its corpus is not recorded)"
            return f"error model: v{active.version} is active, built {built}"
        reason = f"the corpus has changed since v{active.version} was built"
    else:
        try:
            model, about = shipped()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the shipped error model cannot be used: %s", exc)
            reason = f"no error model, and the shipped one cannot be read ({exc})"
        else:
            if about.get("fingerprint") == fingerprint:
                artifact = error_model_store(model=model, corpus_fingerprint=fingerprint)
                return (f"error model: loaded the shipped one as v{artifact.version} (the corpus matches its "
                        f"fingerprint: {fingerprint['families']} families, {fingerprint['observations']} observations)")
            reason = (f"no error model, and the corpus ({fingerprint['families']} families, "
                      f"{fingerprint['observations']} observations) is not the one the shipped model was built from")
    return reason + "; " + _rebuild(frame, created_by)


def _rebuild(frame: pd.DataFrame, created_by) -> str:
    running = error_model_rebuild()
    if running is not None:
        return f"a rebuild is already {running.status} (job {running.pk})"
    usable = len(eligible_families(frame))
    if usable < MIN_FAMILIES:
        return (f"not rebuilding: an error model needs {MIN_FAMILIES} families with 3 or more sizes, the corpus "
                f"has {usable}")
    try:
        job = sweep_enqueue(created_by=created_by)
    except JobEnqueueError as exc:
        return f"a rebuild could not be queued: {exc}"
    return f"queued a rebuild (sweep job {job.pk}); the plan form shows its progress"

