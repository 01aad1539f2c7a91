"""planner.corpus.exporting.export_canonical: export -> import is lossless."""
import gzip
import io
import math
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from fits.canonical import CANONICAL_COLUMNS, read_canonical
from planner.corpus.exporting import export_canonical
from planner.corpus.importing import import_canonical
from planner.models import Family, Observation

KEY = ["family", "model", "seed", "metric", "tokens"]
EDGE_VALUES = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53 + 2, 123456789.12345679,
               -3.14159e-7, 1e16, 6.02214076e23]


def _sorted(frame):
    return frame.drop(columns="line").sort_values(KEY).reset_index(drop=True)


def _export_text(**kwargs):
    out = io.StringIO()
    export_canonical(out, **kwargs)
    return out.getvalue()


@pytest.fixture
def reference_slice(tmp_path):
    """A few whole families of the reference corpus, with every optional column present somewhere."""
    frame, _ = read_canonical(Path(settings.SCALEPLAN_SHARED_DIR) / "corpus" / "colpret.csv.gz")
    keep = ["gpt3", "overtrain-C4", "moduleformer-molm", "t5-pile", "chinchilla"]
    return frame[frame["family"].isin(keep)].reset_index(drop=True)


@pytest.mark.slow
def test_export_then_import_reproduces_a_slice_of_the_reference_corpus(db, reference_slice, tmp_path):
    import_canonical(reference_slice.drop(columns="line"))
    path = tmp_path / "out.csv.gz"
    count = export_canonical(path, families=["gpt3", "overtrain-C4", "moduleformer-molm", "t5-pile", "chinchilla"])
    assert count == len(reference_slice)
    exported, _ = read_canonical(path)
    pd.testing.assert_frame_equal(_sorted(exported), _sorted(reference_slice))
    assert exported["flops"].notna().any() and exported["step"].notna().any() and exported["epochs"].isna().any()
    # Into an empty corpus and back out again: the same bytes.
    first = gzip.decompress(path.read_bytes())
    Family.objects.all().delete()
    report = import_canonical(path)
    assert report.rows_inserted == len(reference_slice)
    path2 = tmp_path / "again.csv"
    export_canonical(path2)
    assert path2.read_bytes() == first


def test_edge_values_survive_the_round_trip_bit_for_bit(db):
    rows = [",".join(CANONICAL_COLUMNS)]
    for i, value in enumerate(EDGE_VALUES):
        tokens = abs(value) if value else 1.5
        rows.append(f'edge,m,dec,7,{tokens!r},{i},s 1,"data, with comma",{abs(value)!r},{abs(value)!r},'
                    f'metric_{i},{value!r},train,"quote "" inside"')
    import_canonical(io.StringIO("\n".join(rows) + "\n"))
    text = _export_text()
    Family.objects.all().delete()
    import_canonical(io.StringIO(text))
    stored = {o.metric: o for o in Observation.objects.all()}
    for i, value in enumerate(EDGE_VALUES):
        obs = stored[f"metric_{i}"]
        assert obs.value == value
        if connection.vendor != "sqlite":  # SQLite itself stores -0.0 as 0
            assert math.copysign(1, obs.value) == math.copysign(1, value)
        assert obs.epochs == abs(value) and obs.flops == abs(value) and obs.step == i
    assert obs.dataset == "data, with comma" and obs.source == 'quote " inside' and obs.run.seed == "s 1"


def test_it_writes_the_canonical_header_in_order_and_integers_without_decimals(db):
    import_canonical(io.StringIO(",".join(CANONICAL_COLUMNS) + "\nf,m,dec,1.3e9,1e9,,,,,,loss,3,,\n"))
    lines = _export_text().splitlines()
    assert lines[0] == ",".join(CANONICAL_COLUMNS)
    assert lines[1] == "f,m,dec,1300000000,1000000000,,,,,,loss,3,,"


def test_it_exports_only_the_chosen_families(db):
    import_canonical(io.StringIO(",".join(CANONICAL_COLUMNS) + "\na,a1,dec,1,1,,,,,,loss,3,,\nb,b1,dec,1,1,,,,,,loss,3,,\n"))
    assert [line.split(",")[0] for line in _export_text(families=["b"]).splitlines()[1:]] == ["b"]
    assert len(_export_text(families=Family.objects.filter(name="a")).splitlines()) == 2


def test_it_writes_utf8_to_a_binary_file(db):
    import_canonical(io.StringIO(",".join(CANONICAL_COLUMNS) + "\nfamé,m,dec,1,1,,,,,,loss,3,,\n"))
    out = io.BytesIO()
    export_canonical(out)
    assert "famé" in out.getvalue().decode("utf-8")


def test_the_command_writes_a_file(db, tmp_path, capsys):
    import_canonical(io.StringIO(",".join(CANONICAL_COLUMNS) + "\na,a1,dec,1,1,,,,,,loss,3,,\n"))
    call_command("export_corpus", str(tmp_path / "c.csv.gz"), "--family", "a")
    assert "wrote 1 rows" in capsys.readouterr().out
    frame, _ = read_canonical(tmp_path / "c.csv.gz")
    assert frame["model"].tolist() == ["a1"]
