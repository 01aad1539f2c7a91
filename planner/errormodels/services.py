"""The error-model rebuild as a job split across workers.

A `sweep` job runs in stages, each a Celery task (planner.errormodels.tasks):

1. The job's runner (planner.jobs.tasks.run_job -> sweep_run) reads the corpus's
   primary-metric frame from the database, picks the families eligible for a
   backtest, records them on the job (result = {"stage": "sweeping", ...}) and
   sends one task per family. It then hands the job off: run_job leaves it
   RUNNING.
2. Each family task (sweep_family_run) loads that family's frame, runs
   fits.sweep.sweep_family and writes its SweepRows in one transaction. It is
   idempotent: if the family's rows already exist for the job it does nothing,
   and the (job, family, design_key) unique constraint stops two concurrent
   deliveries from both writing. Progress = families done / total.
3. When a family task sees every family done it sends the finaliser. The
   finaliser (sweep_finalise) claims the job's "finalising" stage with a
   conditional update, so it runs once even when several family tasks send it,
   then fits the error model, stores and activates the artifact and marks the
   job succeeded.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import NoReturn

import numpy as np
import pandas as pd
from django.db import IntegrityError, transaction
from django.utils import timezone

from fits import ErrorModel, eligible_families, fit_error_model, json_safe, sweep_family

from ..corpus.models import Family
from ..corpus.selectors import primary_frame
from ..jobs import dispatch
from ..jobs.models import Job
from ..jobs.services import (JobCancelled, JobFailure, JobHandedOff, job_create, job_fail, job_set_progress,
                             job_succeed, stale_before)
from .fingerprint import corpus_fingerprint
from .models import ErrorModelArtifact, SweepRow

log = logging.getLogger(__name__)

NO_MODEL_MESSAGE = "no error model yet: POST /api/v1/sweeps/ first"

# Family tasks take this share of the job's progress bar; fitting the error model the rest.
SWEEP_PROGRESS_SHARE = 0.9
STAGE_SWEEPING = "sweeping"
STAGE_FINALISING = "finalising"


# --- selectors -------------------------------------------------------------------


def sweep_table(*, job_id: int) -> pd.DataFrame:
    """A sweep job's rows as the DataFrame fits.sweep.run_sweep returns (failed fits: ARE = inf)."""
    columns = ["family", "n_models", "largest_index", "fraction", "policy", "scale_up", "train_compute_share",
               "tokens_per_model", "max_epochs", "has_curves", "law", "n_points", "are", "seconds", "sizes",
               "params", "success", "rmse_log", "method", "rollout_are", "source", "error"]
    rows = SweepRow.objects.filter(job_id=job_id).order_by("family", "largest_index", "n_models", "fraction", "policy")
    table = pd.DataFrame.from_records(list(rows.values_list(*columns)), columns=columns)
    table["are"] = table["are"].astype(float).fillna(math.inf)
    table["rmse_log"] = table["rmse_log"].astype(float)
    table["rollout_are"] = table["rollout_are"].astype(float)
    return table


def error_model_active() -> ErrorModelArtifact | None:
    return ErrorModelArtifact.objects.filter(is_active=True).first()


def error_model_rebuild() -> Job | None:
    """The rebuild of the error model (a sweep job) queued or running, if any; pages show its progress."""
    return (Job.objects.filter(kind=Job.Kind.SWEEP, status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
            .order_by("-created_at").first())


# Parsed error models by artifact version: a worker loads each once (artifacts never change).
_models: dict[int, ErrorModel] = {}
_models_lock = threading.Lock()


def error_model_loaded(artifact: ErrorModelArtifact | None = None) -> tuple[ErrorModelArtifact, ErrorModel] | None:
    """The active (or given) artifact and its parsed model; None when there is none or it is of a format
    this library no longer reads (an artifact from before an upgrade: rebuild it)."""
    artifact = artifact or error_model_active()
    if artifact is None:
        return None
    with _models_lock:
        model = _models.get(artifact.version)
        if model is None:
            try:
                model = _models[artifact.version] = ErrorModel.from_dict(artifact.model)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("error model v%s cannot be read (%s); rebuild it", artifact.version, exc)
                return None
    return artifact, model


def families_done(*, job_id: int) -> int:
    return SweepRow.objects.filter(job_id=job_id).values("family").distinct().count()


# --- services ------------------------------------------------------------------------


def sweep_enqueue(*, families=None, created_by=None) -> Job:
    """Queue a rebuild of the error model over the named families (all eligible when None)."""
    names = sorted(set(families)) if families is not None else None
    return job_create(kind=Job.Kind.SWEEP, input={"families": names}, created_by=created_by)


def design_key(design: dict) -> str:
    return f"k={design['n_models']},l={design['largest_index']},f={design['fraction']:g},p={design['policy']}"


def _sweep_row(job_id: int, row: dict, source: str = "") -> SweepRow:
    design = row["design"]
    return SweepRow(
        job_id=job_id, family=row["family"], design_key=design_key(design),
        n_models=design["n_models"], largest_index=design["largest_index"], fraction=design["fraction"],
        policy=design["policy"], scale_up=row["scale_up"], train_compute_share=row["train_compute_share"],
        tokens_per_model=row["tokens_per_model"], max_epochs=row["max_epochs"], has_curves=bool(row["has_curves"]),
        sizes=row["sizes"], law=row["law"], n_points=row["n_points"], are=json_safe(row["are"]),
        params={k: json_safe(v) for k, v in row["params"].items()}, success=bool(row["success"]),
        rmse_log=json_safe(row["rmse_log"]), method=row.get("method", ""), rollout_are=json_safe(row.get("rollout_are")),
        source=source, error=row["error"], seconds=row["seconds"],
    )


def sweep_run(*, job: Job, progress, send: bool = True) -> NoReturn:
    """The sweep job's runner: choose the families, send one task per family, hand the job off.

    ``send=False`` sends nothing (the caller runs the stages itself, as ``rebuild_error_model --sync``).
    """
    requested = job.input.get("families")
    frame = primary_frame(families=requested)
    eligible = eligible_families(frame)
    if requested is not None:
        missing = sorted(set(requested) - set(eligible))
        if missing:
            raise JobFailure(
                f"Not sweepable (unknown, excluded from fitting, or fewer than 3 sizes): {', '.join(missing)}.",
                details={"families": missing},
            )
    if len(eligible) < 3:
        raise JobFailure(f"An error model needs at least 3 families with 3 or more sizes; the corpus has {len(eligible)}.")
    # Families with the most checkpoints first (the slowest to sweep), so they do not start last.
    sizes = frame.groupby("family").size()
    order = sorted(eligible, key=lambda name: (-int(sizes[name]), name))
    stage = {"stage": STAGE_SWEEPING, "families": order, "dispatched_at": timezone.now().isoformat()}
    if requested is None:  # the whole corpus: the artifact records which (a starting server compares it)
        stage["corpus_fingerprint"] = corpus_fingerprint(frame)
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(result=stage, updated_at=timezone.now())
    progress(0.0, f"0 of {len(order)} families swept")
    if send:
        options = dispatch.same_queue()
        for name in order:
            dispatch.sweep_family_send(job.pk, name, **options)
        # A redelivered runner (after its worker died) sends the tasks again: family tasks are idempotent.
        if families_done(job_id=job.pk) == len(order):
            sweep_finalise_send(job_id=job.pk)
    raise JobHandedOff(f"{len(order)} family tasks sent")


def _running_sweep(job_id: int) -> Job | None:
    return Job.objects.filter(pk=job_id, kind=Job.Kind.SWEEP, status=Job.Status.RUNNING).first()


def sweep_family_run(*, job_id: int, family: str, send: bool = True) -> bool:
    """Sweep one family of a running sweep job. False when there was nothing to do."""
    job = _running_sweep(job_id)
    if job is None or SweepRow.objects.filter(job_id=job_id, family=family).exists():
        return False
    rows = sweep_family(primary_frame(families=[family]))
    source = Family.objects.filter(name=family).values_list("source", flat=True).first() or ""
    try:
        with transaction.atomic():
            if _running_sweep(job_id) is None:
                return False
            SweepRow.objects.bulk_create([_sweep_row(job_id, row, source) for row in rows])
    except IntegrityError:
        # A concurrent delivery of the same task wrote the family first.
        log.info("sweep job %s: family %s already written", job_id, family)
        return False
    total = len((job.result or {}).get("families", []))
    done = families_done(job_id=job_id)
    try:
        job_set_progress(job_id=job_id, fraction=SWEEP_PROGRESS_SHARE * done / max(total, 1),
                         message=f"{done} of {total} families swept (last: {family})")
    except JobCancelled:
        return True
    if done >= total and send:
        sweep_finalise_send(job_id=job_id)
    return True


def sweep_finalise_send(*, job_id: int) -> None:
    dispatch.sweep_finalise_send(job_id, **dispatch.same_queue())


def _claim_finalise(job_id: int) -> Job | None:
    """Take the finalising stage: from "sweeping", or from a finaliser that died (stale)."""
    job = _running_sweep(job_id)
    if job is None:
        return None
    result = job.result or {}
    now = timezone.now()
    total = len(result.get("families", []))
    if families_done(job_id=job_id) < total:
        return None
    stage = result.get("stage")
    if stage == STAGE_FINALISING and result.get("finalising_since", "") >= stale_before().isoformat():
        return None
    if stage not in (STAGE_SWEEPING, STAGE_FINALISING):
        return None
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, result=job.result).update(
        result={**result, "stage": STAGE_FINALISING, "finalising_since": now.isoformat()}, updated_at=now
    )
    return Job.objects.get(pk=job_id) if claimed else None


def sweep_finalise(*, job_id: int) -> bool:
    """Fit the error model from the job's rows, store and activate it, finish the job. Runs once per job."""
    job = _claim_finalise(job_id)
    if job is None:
        return False
    started = time.perf_counter()
    table = sweep_table(job_id=job_id)

    def on_fold(done, total, family):
        job_set_progress(job_id=job_id, fraction=SWEEP_PROGRESS_SHARE + (1 - SWEEP_PROGRESS_SHARE) * done / total,
                         message=f"error model: {done} of {total} families held out")

    try:
        model = fit_error_model(table, progress=on_fold)
    except JobCancelled:
        return False
    except ValueError as exc:
        job_fail(job_id=job_id, error=f"The error model could not be fitted: {exc}")
        return False
    artifact = error_model_store(model=model.to_dict(), sweep_job_id=job_id, activate=True,
                                 corpus_fingerprint=job.result.get("corpus_fingerprint"))
    dispatched = job.result.get("dispatched_at")
    sweep_seconds = None
    if dispatched:
        sweep_seconds = (timezone.now() - pd.Timestamp(dispatched).to_pydatetime()).total_seconds()
    laws = int(len(table))
    result = {
        "artifact_version": artifact.version,
        "validation": model.validation,
        "trained_on": model.trained_on,
        "families": job.result.get("families", []),
        "laws": laws,
        "laws_failed": int((~np.isfinite(table["are"])).sum()),
        "fit_seconds_total": float(table["seconds"].sum()),
        "seconds": round(sweep_seconds, 2) if sweep_seconds is not None else None,
        "error_model_seconds": round(time.perf_counter() - started, 2),
    }
    if not job_succeed(job_id=job_id, result=result):
        log.info("sweep job %s was cancelled while finalising; artifact v%s kept", job_id, artifact.version)
    return True


def sweep_stalled_stage(*, job: Job) -> str | None:
    """What a handed-off sweep is waiting for, if the tasks meant to give it are certainly gone.

    "families" when no family task has written for longer than a task may run
    (any still in flight has been killed by its hard limit); "finaliser" when every
    family is written but no finaliser took the job, or when the one that did is stale.
    None while the job may still be moving, or if it is not a handed-off sweep.
    """
    result = job.result or {}
    stage = result.get("stage")
    if job.kind != Job.Kind.SWEEP or job.status != Job.Status.RUNNING or stage is None:
        return None
    if job.updated_at >= stale_before():
        return None
    if stage == STAGE_FINALISING:
        return "finaliser" if result.get("finalising_since", "") < stale_before().isoformat() else None
    return "finaliser" if families_done(job_id=job.pk) >= len(result.get("families", [])) else "families"


def sweep_resend(*, job: Job, stage: str) -> list[str]:
    """Send again the tasks of a stalled stage (see sweep_stalled_stage); they are idempotent. Returns what was sent."""
    if stage == "finaliser":
        sweep_finalise_send(job_id=job.pk)
        return ["finaliser"]
    written = set(SweepRow.objects.filter(job_id=job.pk).values_list("family", flat=True).distinct())
    missing = [name for name in job.result.get("families", []) if name not in written]
    for name in missing:
        dispatch.sweep_family_send(job.pk, name, **dispatch.same_queue())
    return missing


@transaction.atomic
def error_model_activate(*, artifact: ErrorModelArtifact) -> ErrorModelArtifact:
    """Make `artifact` the one active error model (the partial unique index guarantees at most one)."""
    list(ErrorModelArtifact.objects.select_for_update().filter(is_active=True))  # serialise activations
    ErrorModelArtifact.objects.filter(is_active=True).exclude(pk=artifact.pk).update(is_active=False)
    ErrorModelArtifact.objects.filter(pk=artifact.pk).update(is_active=True)
    artifact.is_active = True
    return artifact


@transaction.atomic
def error_model_store(*, model: dict, sweep_job_id: int | None = None, activate: bool = True,
                      corpus_fingerprint: dict | None = None) -> ErrorModelArtifact:
    """Save an error model (ErrorModel.to_dict()) as the next version; activate it unless told not to.

    ``corpus_fingerprint``: the corpus it was built from (planner.errormodels.shipped), when known."""
    # Locks the newest row so two stores cannot take the same version number.
    latest = ErrorModelArtifact.objects.select_for_update().order_by("-version").first()
    version = (latest.version if latest else 0) + 1
    artifact = ErrorModelArtifact.objects.create(
        version=version, model=model, validation=model.get("validation", {}), sweep_job_id=sweep_job_id,
        corpus_fingerprint=corpus_fingerprint,
    )
    return error_model_activate(artifact=artifact) if activate else artifact
