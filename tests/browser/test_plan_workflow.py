"""In the browser, the way a team works through a plan: plan, read why (runners-up, factors), download the plan
and the prediction's template, fill the template in once the runs are trained, predict from it through the
form the plan links to, and find both on /plans/."""
import csv
import io
import json
import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from fits import plan_csv, prediction_template_csv
from planner.errormodels.services import error_model_store
from planner.errormodels.shipped import shipped
from planner.models import Job
from tests.browser.support import JOB_TIMEOUT_MS, corpus_family, images_loaded, log_in, png_responses

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shipped_model(db):
    """The error model the repository ships (the one a fresh server loads)."""
    return error_model_store(model=shipped()[0])


def fill(page, **values):
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def download(page, link_name):
    """Click a download link as a person does; the file the browser saved, as text."""
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name, exact=True).click()
    saved = info.value
    assert saved.failure() is None, saved.failure()
    with open(saved.path(), encoding="utf-8") as f:
        return saved.suggested_filename, f.read()


def opt_law():
    """A law fitted to OPT's curves in the reference corpus: what the planned runs' losses stand in for."""
    from fits import fit

    header, rows = corpus_family("OPT")
    frame = pd.DataFrame(rows, columns=header)
    frame = frame[frame["metric"] == "loss_from_ppl"]
    frame = frame.assign(params=frame["params"].astype(float), tokens=frame["tokens"].astype(float),
                         value=frame["value"].astype(float), seed="", epochs=float("nan"))
    return fit(frame[["family", "model", "params", "tokens", "value", "seed", "epochs"]]).result


def filled_in(template: str, law) -> str:
    """The template with every checkpoint's value filled in from the corpus's law (as training would)."""
    rows = list(csv.DictReader(io.StringIO(template)))
    assert rows and all(r["value"] == "" for r in rows)
    values = law.predict([float(r["params"]) for r in rows], [float(r["tokens"]) for r in rows])
    out = io.StringIO()
    writer = csv.DictWriter(out, ["model", "params", "tokens", "value"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "value": f"{v:.5f}"} for r, v in zip(rows, values))
    return out.getvalue()


@pytest.mark.worker
def test_a_team_plans_reads_why_downloads_the_files_and_predicts_from_the_filled_template(
        page, shot, guard, owner, shipped_model, start_worker, tmp_path):
    start_worker()
    log_in(page, owner, then="/plans/new")
    fill(page, **{"Target parameters": "7e9", "Target tokens": "1.4e11",
                  "or budget as a share of the target's compute": "0.05"})
    page.get_by_role("button", name="Plan").click()
    expect(page).to_have_url(re.compile(r"/plans/\d+/$"))
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    job = Job.objects.get(kind="plan")
    plan = job.result

    # Why this design: the rule, the factors, the runners-up each with p10/p50/p90.
    expect(page.get_by_role("heading", name="Why this design")).to_be_visible()
    expect(page.locator("table.factors tbody tr")).to_have_count(len(plan["choice"]["factors"]))
    runners = page.locator("table.alternatives tbody tr")
    expect(runners).to_have_count(len(plan["alternatives"]))
    assert plan["alternatives"]
    for row, alternative in zip(runners.all(), plan["alternatives"]):
        cells = row.locator("td").all_inner_texts()
        assert cells[2:5] == [f"{alternative[q] * 100:.3g}%" for q in ("p10", "p50", "p90")], cells
    # Each run with its own evaluation interval.
    runs = page.locator("table.runs tbody tr")
    expect(runs).to_have_count(len(plan["recommended"]["models"]))
    for row, run in zip(runs.all(), plan["recommended"]["models"]):
        cells = row.locator("td").all_inner_texts()
        assert (cells[0], cells[5]) == (run["model"], f"{run['eval_every_tokens']:.3g}")
    images = images_loaded(page)
    assert len(images) == 3 and all(i["width"] > 0 for i in images), images
    assert sorted(png_responses(guard)) == sorted((i["src"], 200, "image/png") for i in images)
    shot("plan")

    # The downloads are files, the ones the library writes from the stored plan.
    name, text = download(page, "plan.json")
    assert name == f"plan-{job.pk}-plan.json" and json.loads(text) == plan
    name, text = download(page, "plan.csv")
    assert name == f"plan-{job.pk}-runs.csv" and text == plan_csv(plan)
    name, template = download(page, "prediction-template.csv")
    assert name == f"plan-{job.pk}-prediction-template.csv" and template == prediction_template_csv(plan)

    # Once trained: the template filled in with losses from the corpus, uploaded through the linked form.
    path = tmp_path / "my-runs.csv"
    path.write_text(filled_in(template, opt_law()))
    page.get_by_role("link", name="predict the target from them").click()
    expect(page).to_have_url(re.compile(rf"/predictions/new\?plan={job.pk}&"))
    expect(page.get_by_label("Target parameters")).to_have_value("7e+09")
    expect(page.get_by_label("Target tokens")).to_have_value("1.4e+11")
    expect(page.get_by_role("link", name="its prediction template")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_label("or upload a CSV(.gz)").click()
    chooser.value.set_files(path)
    shot("prediction-form")
    page.get_by_role("button", name="Predict").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    prediction = Job.objects.get(kind="prediction")
    assert prediction.input["n_rows"] == template.count("\n") - 1
    [point] = prediction.result["points"]
    expect(page.locator("td.pred")).to_have_text(f"{point['prediction']:.4g}")
    # The law it was filled from predicts the target; the fit on the planned runs finds it again closely.
    assert point["prediction"] == pytest.approx(float(opt_law().predict([7e9], [1.4e11])[0]), rel=0.03)
    shot("prediction")

    # /plans/: both, with their status and links.
    page.get_by_role("link", name="My plans").click()
    expect(page).to_have_url(re.compile(r"/plans/$"))
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("prediction")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("plan")
    expect(page.locator("table.jobs")).to_contain_text("Succeeded")
    shot("list")
    page.get_by_role("link", name=str(job.pk), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/plans/{job.pk}/$"))


def test_the_navigation_shows_the_user_and_logs_out(page, shot, owner):
    log_in(page, owner, then="/plans/")
    expect(page.locator("header .user")).to_have_text("owner")
    expect(page.get_by_text("No plans or predictions yet.")).to_be_visible()
    shot("logged-in")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.locator("header .user")).to_have_count(0)
    # Logging in without a `next` lands on the home page.
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill("pw-" + owner.username)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header .user")).to_have_text("owner")
