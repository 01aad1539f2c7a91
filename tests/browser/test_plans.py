"""In the browser: a user logs in, plans small models in the form at /plans/new, watches the job, reads the plan."""
import re

import pytest
from playwright.sync_api import expect

from planner.models import Job
from tests.browser.support import JOB_TIMEOUT_MS, images_loaded, log_in, png_responses
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture: a real model from three corpus families)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW = "/plans/new"


def fill_plan_form(page, **values):
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def field_errors(page, name):
    """The error texts shown in the form row of the input named `name`."""
    return page.locator(f".field:has([name='{name}']) .errors li").all_inner_texts()


@pytest.mark.worker
def test_a_user_plans_watches_the_job_and_sees_the_plan_with_its_plots(page, shot, guard, owner, error_model,
                                                                       start_worker):
    log_in(page, owner, then=NEW)
    expect(page.get_by_text(f"Error model v{error_model.version}")).to_be_visible()
    shot("form")

    fill_plan_form(page, **{"Target parameters": "7e9", "Target tokens": "1.4e11",
                            "or budget as a share of the target's compute": "0.05",
                            "At most this many small models": "6"})
    shot("form-filled")
    page.get_by_role("button", name="Plan").click()

    # No worker yet: the job waits in the queue and the page says so, with its progress, and refreshes itself.
    expect(page).to_have_url(re.compile(r"/plans/\d+/$"))
    job = Job.objects.get()
    assert (job.kind, job.status, job.created_by) == ("plan", "queued", owner)
    expect(page.locator(".status strong")).to_have_text("Queued")
    expect(page.locator("progress")).to_be_visible()
    expect(page.locator("meta[http-equiv=refresh]")).to_have_attribute("content", "2")
    shot("queued")

    start_worker()
    # The page refreshes itself until the plan is there; nobody reloads it.
    expect(page.locator(".status strong")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    job.refresh_from_db()
    plan = job.result

    for heading in ("Train these models", "Downloads", "Expected error on the target", "Why this design",
                    "Naive designs at the same budget", "Alternatives at other budgets",
                    "Compute-optimal split of the target’s own compute", "Plots"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    models = page.locator("table.runs tbody tr")
    expect(models).to_have_count(len(plan["models"]))
    expect(models.first.locator("td").nth(1)).to_have_text(f"{plan['models'][0]['params']:.3g}")
    expect(page.locator(".expected strong")).to_have_text(f"{plan['expected_are']['p50'] * 100:.3g}%")

    images = images_loaded(page)
    assert sorted(i["src"] for i in images) == [f"/plans/{job.pk}/{name}.png" for name in ("frontier", "isoflop",
                                                                                            "sizes")]
    assert all(i["width"] > 0 and i["height"] > 0 for i in images), images
    assert sorted(png_responses(guard)) == [(i, 200, "image/png") for i in sorted(i["src"] for i in images)]
    shot("plan")


def test_bad_plan_input_shows_each_error_under_its_field_and_queues_nothing(page, shot, owner, error_model):
    log_in(page, owner, then=NEW)

    fill_plan_form(page, **{"Target parameters": "big", "Target tokens": "1.4e11",
                            "or budget as a share of the target's compute": "0.05"})
    page.get_by_role("button", name="Plan").click()
    expect(page.locator(".has-errors")).to_have_count(1)
    assert field_errors(page, "target_params") == ["Enter a number."]
    expect(page.get_by_label("Target parameters", exact=True)).to_have_value("big")  # kept for correcting
    shot("not-a-number")

    fill_plan_form(page, **{"Target parameters": "7e9", "or budget as a share of the target's compute": "3"})
    page.get_by_role("button", name="Plan").click()
    expect(page.locator(".has-errors")).to_have_count(1)
    [message] = field_errors(page, "budget_fraction")
    assert "must be a share of the target's compute" in message
    shot("budget-over-one")

    fill_plan_form(page, **{"or budget as a share of the target's compute": "0.05",
                            "Largest small model (optional)": "8e9"})
    page.get_by_role("button", name="Plan").click()
    expect(page.locator(".has-errors")).to_have_count(1)
    [message] = field_errors(page, "max_size")
    assert "must be smaller than the target" in message
    shot("largest-above-target")

    assert not Job.objects.exists()
