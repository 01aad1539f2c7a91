"""Family and model names: one rule at every entrance, and every page works for every name the rule lets in.

The bars of issue 11 over HTTP on a fresh SQLite database with no Redis configured (Django test client).
"""
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from planner.corpus.importing import import_canonical
from planner.corpus.models import Family, Run, validate_family_name, validate_model_name, validate_text

HEADER = "family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source\n"

# Valid, but awkward in URLs, HTML and CSV: spaces, unicode, quotes, %, #, ?, &, and the characters
# real corpora use inside names (GPT2-c4-1, porian_rw_tuned_constlr, m=1.3b_x).
AWKWARD = ["fam ily 日本 ü", "q'u\"ote <b>&amp;", "100% #1 ?x=y&z", "GPT2-c4-1", "a.b=c_d"]


def family_rows(family, sizes=(10e6, 30e6, 100e6), models=None):
    rows = []
    for i, params in enumerate(sizes):
        model = (models or [f"{family} m{i}"] * len(sizes))[i]
        for tokens, value in ((1e9, 4.0), (2e9, 3.6), (4e9, 3.3), (8e9, 3.1)):
            loss = value - 0.25 * i
            rows.append(f'"{family.replace(chr(34), chr(34) * 2)}","{model.replace(chr(34), chr(34) * 2)}",dec,'
                        f"{int(params)},{tokens},,,pile,,,val_loss,{loss},validation,test")
    return rows


def csv_of(rows):
    return HEADER + "\n".join(rows) + "\n"


@pytest.mark.parametrize("family", ["=cmd|' /C calc'!A0", "@SUM(1)"])
def test_import_corpus_refuses_a_formula_family_naming_the_family_column(db, tmp_path, family):
    path = tmp_path / "formula.csv"
    path.write_text(csv_of([f'"{family}",m1,dec,10,1e9,,,pile,,,val_loss,3,,s']))
    with pytest.raises(CommandError) as refused:
        call_command("import_corpus", str(path), stdout=io.StringIO())
    message = str(refused.value)
    assert "line 2, column 'family'" in message and "formula" in message
    assert not Family.objects.exists()


@pytest.mark.parametrize("column, value, reason", [
    ("family", "rel/slash", "must not contain '/'"),
    ("family", "..", "cannot be '..'"),
    ("model", "line\nbreak", "non-printable character U+000A"),
    ("model", "admin\u202egnp.exe", "non-printable character U+202E"),
    ("model", "-1+2", "must not start with '-'"),
    ("model", "+x", "must not start with '+'"),
    ("model", "m" * 201, "is longer than 200 characters"),
    ("metric", "val\u2066loss", "control or bidi character U+2066"),
    ("dataset", "pile\x07", "control or bidi character U+0007"),
    ("source", "s" * 2001, "is longer than 2000 characters"),
])
def test_the_importer_refuses_a_bad_name_with_its_line_and_column(db, column, value, reason):
    from fits import CorpusValidationError

    cells = {"family": "fam", "model": "m1", "metric": "val_loss", "dataset": "pile", "source": "s"}
    cells[column] = value
    quoted = {k: '"' + v.replace('"', '""') + '"' for k, v in cells.items()}
    row = (f"{quoted['family']},{quoted['model']},dec,10,1e9,,,{quoted['dataset']},,,{quoted['metric']},3,,"
           f"{quoted['source']}")
    with pytest.raises(CorpusValidationError) as refused:
        import_canonical(io.StringIO(csv_of([row])))
    [problem] = refused.value.problems
    assert (problem.line, problem.column) == (2, column) and reason in problem.reason
    assert not Run.objects.exists()


def test_metric_and_dataset_names_keep_the_sources_spelling(db):
    rows = [row.replace("pile", "LLM360/AmberDatasets").replace("val_loss", "val_loss/avg")
            for row in family_rows("GPT2-c4-1")]
    report = import_canonical(io.StringIO(csv_of(rows)))
    assert report.rows_inserted == 12
    assert Run.objects.get(name="GPT2-c4-1 m0").family.name == "GPT2-c4-1"


def test_the_model_validators_apply_the_same_rule_in_the_admin(staff, client):
    for validator, bad in ((validate_family_name, "=HYPERLINK(1)"), (validate_model_name, "a/b"),
                           (validate_text, "x\u202ey")):
        with pytest.raises(ValidationError):
            validator(bad)
    family = Family.objects.create(name="fam")
    client.force_login(staff)
    url = reverse("admin:planner_family_change", args=[family.pk])
    response = client.post(url, {"name": "@SUM(1)", "arch": "", "dataset": "", "source": "", "primary_metric": "",
                                 "notes": ""})
    assert response.status_code == 200 and "must not start with" in response.content.decode()
    family.refresh_from_db()
    assert family.name == "fam"


def test_a_slash_family_is_refused_so_every_page_still_answers(db, client):
    from fits import CorpusValidationError

    with pytest.raises(CorpusValidationError):
        import_canonical(io.StringIO(csv_of(family_rows("rel/slash"))))
    for path in ("/families/", "/api/v1/laws/", "/api/v1/families/"):
        assert client.get(path).status_code == 200, path


@pytest.mark.slow
def test_every_page_works_for_every_awkward_but_valid_name(staff, client):
    rows = []
    for family in AWKWARD:
        rows += family_rows(family)
    report = import_canonical(io.StringIO(csv_of(rows)))
    assert report.rows_inserted == 12 * len(AWKWARD)
    client.force_login(staff)
    for name in AWKWARD:
        family = Family.objects.get(name=name)
        run = family.runs.first()
        pages = [
            "/families/", f"/families/?q={name[:4]}", reverse("family-page", args=[name]),
            reverse("family-plot", args=[name]), "/api/v1/laws/", reverse("api:law-detail", args=[name]),
            "/api/v1/families/", reverse("api:family-detail", args=[family.pk]),
            f"/api/v1/runs/?family={family.pk}", "/admin/planner/family/", "/admin/planner/run/",
            reverse("admin:planner_family_change", args=[family.pk]), reverse("admin:planner_run_change", args=[run.pk]),
        ]
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, (name, path, response.status_code)
        page = client.get(reverse("family-page", args=[name])).content.decode()
        assert reverse("family-plot", args=[name]) in page.replace("&amp;", "&").replace("&#x27;", "'")
    # The family list links to every family's page, and each link leads there.
    listing = client.get("/families/").content.decode()
    for name in AWKWARD:
        assert reverse("family-page", args=[name]).replace("&", "&amp;") in listing.replace("&#x27;", "'")
