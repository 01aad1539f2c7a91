"""In the browser: a team's runs as TensorBoard logs them, through to a prediction that follows training and advice.

The logs are built here from the corpus's OPT curves (its loss from perplexity, the four sizes up to 13B),
written by tensorboardX as a training script does (tests/fits/trackers/writers.py: the loss, the learning
rate and the tokens seen at every step), one sub-directory per run, and zipped: first as the runs stood at
half of their planned tokens, then finished.
"""
import re
import zipfile

import pandas as pd
import pytest
from playwright.sync_api import expect

from planner.models import Job
from tests.browser.support import JOB_TIMEOUT_MS, corpus_family, images_loaded, log_in, png_responses
from tests.fits.trackers.conftest import OPT_TOKENS_PER_STEP
from tests.fits.trackers.writers import LOSS, write_tensorboard

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IMPORT = "/predictions/import"


@pytest.fixture
def opt_logs(tmp_path):
    """OPT up to 13B as TensorBoard logs: (zip as of half the planned tokens, zip of the whole runs, params CSV
    text with each run's size, tokens per step and planned length, the 175B target's final tokens)."""
    header, rows = corpus_family("OPT")
    frame = pd.DataFrame(rows, columns=header)
    frame = frame[frame["metric"] == "loss_from_ppl"].astype({"params": float, "tokens": float, "value": float})
    target = frame[frame["params"] == 1.75e11]
    runs = frame[frame["params"] <= 13e9][["model", "params", "tokens", "value"]].copy()
    assert set(runs["model"]) == {"OPT-125m", "OPT-1.3b", "OPT-6.7b", "OPT-13b"}
    runs["step"] = (runs["tokens"] / runs["model"].map(OPT_TOKENS_PER_STEP)).round().astype(int)
    planned = runs.groupby("model")["tokens"].max()
    half = runs[runs["tokens"] <= 0.5 * runs["model"].map(planned)]

    def zipped(part, name):
        root = write_tensorboard(part, tmp_path / name / "opt-logs")
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(root.rglob("*")):
                archive.write(file, file.relative_to(root.parent).as_posix())
        return path

    params = "run,params,tokens_per_step,run_tokens\n" + "".join(
        f"{m},{int(n)},{int(OPT_TOKENS_PER_STEP[m])},{planned[m]:.0f}\n"
        for m, n in runs.groupby("model")["params"].first().items())
    return zipped(half, "half"), zipped(runs, "whole"), params, float(target["tokens"].max()), len(half), len(runs)


@pytest.mark.worker
def test_a_team_uploads_tensorboard_logs_follows_the_prediction_as_runs_advance_and_gets_advice(
        page, shot, guard, owner, opt_logs, start_worker):
    half_zip, whole_zip, params, target_tokens, n_half, n_whole = opt_logs
    log_in(page, owner, then=IMPORT)
    shot("import-form")
    page.get_by_label("Logs", exact=True).set_input_files(half_zip)
    page.get_by_label("Loss metric").fill(LOSS)
    page.get_by_label("Parameters of each run").fill(params)
    page.get_by_label("Target parameters").fill("1.75e11")
    page.get_by_label("Target tokens").fill(f"{target_tokens:g}")
    shot("import-filled")
    page.get_by_role("button", name="Import and predict").click()

    # The logs were read before the job was queued: the report is on the page while it waits for a worker.
    expect(page).to_have_url(re.compile(r"/predictions/\d+/progress/$"))
    first = Job.objects.get()
    assert (first.kind, first.status, first.input["filename"], len(first.input["runs"])) == (
        "prediction", "queued", "half.zip", n_half)
    expect(page.locator(".status strong")).to_have_text("Queued")
    expect(page.get_by_role("heading", name="Import report: half.zip")).to_be_visible()
    expect(page.get_by_text("tensorboard: 4 of 4 runs imported")).to_be_visible()
    expect(page.locator("table.runs-found tbody tr")).to_have_count(4)
    expect(page.locator("table.runs tr.in-progress")).to_have_count(4)
    shot("queued-with-report")

    start_worker()
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    first.refresh_from_db()
    expect(page.locator("p.expected strong.pred")).to_have_text(f"{first.result['prediction']:.4g}")
    expect(page.get_by_role("heading", name="As the runs advanced")).to_be_visible()
    expect(page.locator("table.history tbody tr")).to_have_count(len(first.result["history"]["history"]))
    [image] = images_loaded(page)
    assert image["src"] == f"/predictions/{first.pk}/history.png" and image["width"] > 0, image
    shot("prediction-with-history")

    # The runs finished: the same logs, whole, update the prediction (the import's options come pre-filled).
    page.get_by_role("link", name="Update with newer checkpoints").click()
    expect(page.get_by_label("Loss metric")).to_have_value(LOSS)
    expect(page.get_by_label("Parameters of each run")).to_have_value(re.compile(r"^run,params,tokens_per_step"))
    page.get_by_label("or the tracker's logs").set_input_files(whole_zip)
    shot("update-form")
    page.get_by_role("button", name="Update").click()
    expect(page).to_have_url(re.compile(r"/predictions/\d+/progress/$"))
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    second = Job.objects.latest("pk")
    assert second.input["follows"] == first.pk and len(second.input["runs"]) == n_whole
    expect(page.get_by_text(f"An update of prediction {first.pk}")).to_be_visible()
    expect(page.get_by_role("heading", name="Over the chain of updates")).to_be_visible()
    expect(page.locator("table.history").nth(1).locator("tbody tr")).to_have_count(2)
    images = images_loaded(page)
    assert sorted(i["src"] for i in images) == [f"/predictions/{second.pk}/history.png",
                                                f"/predictions/{second.pk}/uploads.png"]
    assert all(i["width"] > 0 for i in images), images
    shot("update-with-chain")

    # Which run next, from this prediction's runs and target, with the compute left.
    page.get_by_role("link", name="Which run next?").click()
    expect(page.get_by_label("Runs of prediction")).to_have_value(str(second.pk))
    page.get_by_label("FLOPs left for new runs").fill("1e23")
    shot("advice-form")
    page.get_by_role("button", name="Advise").click()
    expect(page).to_have_url(re.compile(r"/advice/\d+/$"))
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    advice = Job.objects.get(kind=Job.Kind.ADVICE)
    result = advice.result
    assert advice.input["prediction"] == second.pk and result["ranked_by"] == "own fit"
    assert result["runs"][0]["params"] > 13e9  # closer in size to the target than any run so far
    advised = page.locator("table.advised tbody tr")
    expect(advised).to_have_count(1)
    expect(advised.locator("td.params")).to_have_text(f"{result['runs'][0]['params']:.4g}")
    expect(page.locator("p.expected strong").first).to_have_text(f"{100 * result['expected_are']['now']['p50']:.3g}%")
    expect(page.locator("p.evidence")).to_contain_text("Ranked by the own fit")
    expect(page.locator("table.runner-ups tbody tr")).to_have_count(max(1, len(result["runner_ups"])))
    assert sorted(set(png_responses(guard))) == sorted(
        {(src, 200, "image/png") for src in (f"/predictions/{first.pk}/history.png",
                                             f"/predictions/{second.pk}/history.png",
                                             f"/predictions/{second.pk}/uploads.png")})
    shot("advice")


def test_bad_logs_show_the_error_under_its_field_and_queue_nothing(page, shot, owner, opt_logs):
    half_zip, _, params, target_tokens, _, _ = opt_logs
    log_in(page, owner, then=IMPORT)
    page.get_by_label("Logs", exact=True).set_input_files(half_zip)
    page.get_by_label("Loss metric").fill("val/loss")
    page.get_by_label("Parameters of each run").fill(params)
    page.get_by_label("Target parameters").fill("1.75e11")
    page.get_by_label("Target tokens").fill(f"{target_tokens:g}")
    page.get_by_role("button", name="Import and predict").click()

    expect(page.locator(".has-errors")).to_have_count(1)
    errors = page.locator(".field:has([name=metric]) .errors li").all_inner_texts()
    assert errors == ["half.zip: field 'metric': no run logs the metric 'val/loss'; series found: 'lr', "
                      "'train/loss', 'train/tokens_seen'"], errors
    expect(page.get_by_label("Loss metric")).to_have_value("val/loss")  # kept for correcting
    shot("errors")
    assert not Job.objects.exists()
