"""Corpus work run as jobs: the stats refresh and the import of an uploaded file.

Each function here is the ONE function a job kind's task calls (planner.jobs.tasks),
and the enqueue helpers are what views and management commands call.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from fits import CorpusValidationError, Problem, read_canonical

from ..jobs.models import Job
from ..jobs.services import JobEnqueueError, JobFailure, job_create
from .importing import ImportInterrupted, import_canonical, upload_limits
from .models import Family
from .stats import families_refresh_stats


def uploads_dir() -> Path:
    path = Path(settings.DATA_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def corpus_upload_store(*, upload: UploadedFile) -> Path:
    """Write an uploaded corpus file under DATA_DIR/uploads with a name nobody can choose.

    The worker reads it from there, so web and worker must share DATA_DIR.
    """
    suffix = ".csv.gz" if upload.name.lower().endswith(".gz") else ".csv"
    path = uploads_dir() / f"{uuid.uuid4().hex}{suffix}"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def upload_check_header(*, upload: UploadedFile) -> None:
    """Reject at once an upload whose first line is not the canonical header.

    Raises fits.canonical.CorpusValidationError (line 1, column, reason). The rows
    are validated later by the import job; this catches the wrong file early.
    """
    upload.seek(0)
    magic = upload.read(2)
    upload.seek(0)
    try:
        stream = gzip.GzipFile(fileobj=upload, mode="rb") if magic == b"\x1f\x8b" else upload
        first = stream.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise CorpusValidationError([Problem(0, "", f"corrupt gzip data: {exc}")]) from None
    finally:
        upload.seek(0)
    read_canonical(io.BytesIO(first))


def corpus_stats_enqueue(*, family_names=None, created_by=None) -> Job:
    """Queue a stats refresh for the named families (all when None).

    Coalesced: while a refresh of the same families is queued or running, that job is returned instead
    (``job.coalesced``), so repeated requests cost one refresh (jobs.services.job_create's ``scope``).
    """
    names = sorted(set(family_names)) if family_names is not None else None
    scope = "all" if names is None else "families:" + hashlib.sha256("\x1f".join(names).encode()).hexdigest()[:40]
    return job_create(kind=Job.Kind.CORPUS_STATS, input={"families": names}, created_by=created_by, scope=scope)


def corpus_import_enqueue(*, upload: UploadedFile, skip_invalid=False, replace=False, created_by=None) -> Job:
    """Store the upload and queue its import. If the job cannot be queued, the file is removed."""
    path = corpus_upload_store(upload=upload)
    try:
        return job_create(
            kind=Job.Kind.CORPUS_IMPORT,
            input={
                "path": str(path),
                "filename": upload.name,
                "size": upload.size,
                "skip_invalid": bool(skip_invalid),
                "replace": bool(replace),
            },
            created_by=created_by,
        )
    except JobEnqueueError:
        path.unlink(missing_ok=True)
        raise


def corpus_stats_run(*, job: Job, progress) -> dict:
    names = job.input.get("families")
    ids = None if names is None else list(Family.objects.filter(name__in=names).values_list("pk", flat=True))
    return families_refresh_stats(family_ids=ids, progress=progress)


# A job row is read on every poll: keep at most this many problems on it (counts stay exact).
MAX_PROBLEMS_STORED = 1000


def _problems_dict(problems) -> dict:
    return {
        "n_problems": len(problems),
        "problems": [p.to_dict() for p in problems[:MAX_PROBLEMS_STORED]],
        "problems_truncated": len(problems) > MAX_PROBLEMS_STORED,
    }


def _scaled(progress, lo, hi):
    return lambda fraction, message="": progress(lo + (hi - lo) * fraction, message)


def corpus_import_run(*, job: Job, progress) -> dict:
    """Import the job's uploaded file, then refresh the stats of the families it touched.

    The upload is deleted once this returns or raises: the job then gets an
    outcome (succeeded, failed, cancelled) and keeps the report. Only a worker
    killed outright leaves it, for the retry after a lost worker.
    """
    path = Path(job.input["path"])
    if not path.is_file():
        raise JobFailure(f"The uploaded file {job.input.get('filename', path.name)!r} is no longer on disk ({path}).")
    try:
        report = import_canonical(
            path,
            skip_invalid=job.input.get("skip_invalid", False),
            replace=job.input.get("replace", False),
            progress=_scaled(progress, 0.0, 0.9),
            limits=upload_limits(),
        )
    except CorpusValidationError as exc:
        raise JobFailure(str(exc), details=_problems_dict(exc.problems)) from exc
    except ImportInterrupted as exc:
        raise JobFailure(str(exc)) from exc
    finally:
        path.unlink(missing_ok=True)
    touched = Family.objects.filter(name__in=report.families).values_list("pk", flat=True)
    stats = families_refresh_stats(family_ids=list(touched), progress=_scaled(progress, 0.9, 1.0))
    summary = report.to_dict()
    summary.update(_problems_dict(report.problems))
    return {"filename": job.input.get("filename"), "import": summary, "stats": stats}
