"""Export of the stored corpus as canonical CSV (../shared/CORPUS_FORMAT.md).

Rows stream from the database in chunks, so the whole corpus never sits in
memory. Numbers are written exactly (integral values as integers, others with
repr), so export -> import reproduces every stored float bit for bit.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
from pathlib import Path

from django.db.models import QuerySet

from fits import CANONICAL_COLUMNS

from .models import Observation

_CHUNK = 5000
# Floats below 2**53 that are whole numbers print as integers ("104857600", not
# "104857600.0"): same value, friendlier in a spreadsheet.
_EXACT_INT = 2.0**53


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < _EXACT_INT and math.copysign(1.0, value) > 0:  # keep -0.0
        return str(int(value))
    return repr(value)


def _rows(families):
    observations = Observation.objects.all()
    if families is not None:
        if isinstance(families, QuerySet):
            observations = observations.filter(run__family__in=families)
        else:
            observations = observations.filter(run__family__name__in=list(families))
    fields = (
        "run__family__name", "run__name", "run__arch", "run__params", "tokens", "step", "run__seed",
        "dataset", "epochs", "flops", "metric", "value", "split", "source",
    )
    ordered = observations.order_by("run__family__name", "run__name", "run__seed", "metric", "tokens")
    for (family, model, arch, params, tokens, step, seed, dataset, epochs, flops, metric, value, split,
         source) in ordered.values_list(*fields).iterator(chunk_size=_CHUNK):
        yield (family, model, arch, str(params), _number(tokens), _number(step), seed, dataset, _number(epochs),
               _number(flops), metric, _number(value), split, source)


def _write(text_out, families) -> int:
    writer = csv.writer(text_out, lineterminator="\n")
    writer.writerow(CANONICAL_COLUMNS)
    count = 0
    batch = []
    for row in _rows(families):
        batch.append(row)
        if len(batch) >= _CHUNK:
            writer.writerows(batch)
            count += len(batch)
            batch = []
    writer.writerows(batch)
    return count + len(batch)


def export_canonical(fileobj_or_path, *, families=None) -> int:
    """Write the corpus (or only ``families``: names or a Family queryset) as canonical CSV.

    ``fileobj_or_path``: a path (gzip-compressed when it ends in .gz) or a file
    object; binary file objects get UTF-8. Rows are ordered by family, model,
    seed, metric, tokens. Returns the number of data rows written.
    """
    if isinstance(fileobj_or_path, (str, os.PathLike)):
        path = Path(fileobj_or_path)
        if path.suffix == ".gz":
            with gzip.open(path, "wt", encoding="utf-8", newline="") as out:
                return _write(out, families)
        with path.open("w", encoding="utf-8", newline="") as out:
            return _write(out, families)
    out = fileobj_or_path
    if isinstance(out, (io.RawIOBase, io.BufferedIOBase, gzip.GzipFile)) or "b" in getattr(out, "mode", ""):
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            return _write(text, families)
        finally:
            text.detach()  # leave the caller's file open
    return _write(out, families)
