"""In the browser: a user uploads the losses of their small runs at /predictions/new and reads the prediction."""
import re

import pytest
from playwright.sync_api import expect

from planner.models import Job
from tests.browser.support import (
    JOB_TIMEOUT_MS,
    corpus_family,
    images_loaded,
    log_in,
    png_responses,
    write_csv,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW = "/predictions/new"
UPLOAD = "or upload a CSV(.gz)"


@pytest.fixture
def opt_runs(tmp_path):
    """OPT's four sizes up to 13B (its loss from perplexity), as a user's file; the target is OPT-175B."""
    header, rows = corpus_family("OPT")
    metric, params = header.index("metric"), header.index("params")
    rows = [r for r in rows if r[metric] == "loss_from_ppl"]
    small = [r for r in rows if float(r[params]) <= 13e9]
    assert {float(r[params]) for r in small} == {1.25e8, 1.3e9, 6.7e9, 1.3e10}
    largest = [r for r in rows if float(r[params]) == 1.75e11]
    final_tokens = max(float(r[header.index("tokens")]) for r in largest)
    return write_csv(tmp_path / "opt-up-to-13b.csv", header, small), len(small), final_tokens


def upload(page, path):
    # Through the file chooser, as a person picks the file.
    with page.expect_file_chooser() as chooser:
        page.get_by_label(UPLOAD).click()
    chooser.value.set_files(path)


@pytest.mark.worker
def test_a_user_uploads_runs_watches_the_job_and_sees_the_prediction_interval_and_plot(page, shot, guard, owner,
                                                                                       opt_runs, start_worker):
    path, n_rows, final_tokens = opt_runs
    log_in(page, owner, then=NEW)
    shot("form")
    upload(page, path)
    page.get_by_label("Target parameters").fill("1.75e11")
    page.get_by_label("Target tokens").fill(f"{final_tokens:g}")
    page.get_by_label("Coverage").fill("0.8")
    shot("form-filled")
    page.get_by_role("button", name="Predict").click()

    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    assert (job.kind, job.status, job.input["filename"], job.input["family"]) == (
        "prediction", "queued", path.name, "OPT")
    assert len(job.input["runs"]) == n_rows
    expect(page.locator(".status strong")).to_have_text("Queued")
    expect(page.get_by_text("This page refreshes every 2 seconds")).to_be_visible()
    shot("queued")

    start_worker()
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    job.refresh_from_db()
    [point] = job.result["points"]
    row = page.locator("table.result tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.pred")).to_have_text(f"{point['prediction']:.4g}")
    expect(row.locator("td").last).to_have_text(f"{point['lower']:.4g} – {point['upper']:.4g}")
    assert point["lower"] < point["prediction"] < point["upper"]
    expect(page.locator("th", has_text="80% interval")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Fitted law"))).to_be_visible()
    expect(page.get_by_text(f"from {job.result['data']['n_runs']} runs")).to_be_visible()

    [image] = images_loaded(page)
    assert image["src"] == f"/predictions/{job.pk}/plot.png" and image["width"] > 0 and image["height"] > 0
    assert png_responses(guard) == [(image["src"], 200, "image/png")]
    shot("prediction")


def test_bad_prediction_input_shows_each_error_under_its_field_and_queues_nothing(page, shot, owner, opt_runs,
                                                                                   tmp_path):
    path, _, _ = opt_runs
    lines = path.read_text().splitlines(keepends=True)
    value = lines[0].split(",").index("value")
    fields = lines[2].split(",")
    fields[value] = "oops"
    lines[2] = ",".join(fields)
    bad = tmp_path / "bad-value.csv"
    bad.write_text("".join(lines))

    log_in(page, owner, then=NEW)
    upload(page, bad)
    page.get_by_label("Target parameters").fill("1.75e11")
    page.get_by_label("Target tokens").fill("3e11, lots")
    page.get_by_role("button", name="Predict").click()

    expect(page.locator(".has-errors")).to_have_count(2)
    file_errors = page.locator(".field:has([name=file]) .errors li").all_inner_texts()
    assert file_errors == ["line 3, column 'value': not a number: 'oops'"], file_errors
    tokens_errors = page.locator(".field:has([name=target_tokens]) .errors li").all_inner_texts()
    assert tokens_errors == ["'lots' is not a number."]
    expect(page.get_by_label("Target tokens")).to_have_value("3e11, lots")
    shot("errors")
    assert not Job.objects.exists()
