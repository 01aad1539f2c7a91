"""Reads of the stored corpus for the science: the one loader from the database into a fit frame."""
from __future__ import annotations

import pandas as pd
from django.db.models import F

from fits import FIT_COLUMNS, as_fit_frame

from .models import Observation


def primary_frame(*, families=None, include_excluded: bool = False) -> pd.DataFrame:
    """The corpus's fit frame (fits.FIT_COLUMNS, sorted like the library's) from the database.

    Each family's primary metric only; families with no primary metric chosen are left out, and so are
    families excluded from fitting unless ``include_excluded`` (a family's own page shows its law anyway).
    ``families``: names to keep (all when None).
    """
    rows = Observation.objects.filter(metric=F("run__family__primary_metric")).exclude(run__family__primary_metric="")
    if not include_excluded:
        rows = rows.filter(run__family__excluded_from_fitting=False)
    if families is not None:
        rows = rows.filter(run__family__name__in=list(families))
    values = rows.values_list("run__family__name", "run__name", "run__params", "tokens", "value", "run__seed", "epochs")
    return as_fit_frame(pd.DataFrame.from_records(list(values.iterator(chunk_size=20000)), columns=FIT_COLUMNS))
