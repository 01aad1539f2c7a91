"""In the browser: a staff user imports a canonical CSV through the admin's corpus upload page and reads the report."""
import re

import pytest
from playwright.sync_api import expect

from planner.models import Family, Job, Observation
from tests.browser.support import JOB_TIMEOUT_MS, corpus_family, log_in, write_csv

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAMILIES = "/admin/planner/family/"


@pytest.fixture
def lambda_rows():
    """The `lambda` family of the reference corpus: 659 rows over 5 sizes, some with quoted, comma-holding metrics."""
    return corpus_family("lambda")


def open_import_form(page, staff):
    log_in(page, staff, then=FAMILIES, login_path="/admin/login/")
    page.get_by_role("link", name="Import corpus file").click()
    expect(page).to_have_url(re.compile(r"/admin/planner/job/import/$"))


def upload_and_submit(page, path):
    with page.expect_file_chooser() as chooser:
        page.get_by_label("File").click()
    chooser.value.set_files(path)
    page.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(re.compile(r"/admin/planner/job/\d+/import-status/$"))


def report(page) -> dict:
    rows = page.locator("h2:has-text('Import report') + table tr")
    return dict(zip(rows.locator("th").all_inner_texts(), rows.locator("td").all_inner_texts()))


@pytest.mark.worker
def test_staff_import_a_csv_in_the_admin_and_see_the_rows_imported(page, shot, staff, lambda_rows, tmp_path,
                                                                   start_worker):
    header, rows = lambda_rows
    path = write_csv(tmp_path / "lambda.csv", header, rows)
    open_import_form(page, staff)
    shot("form")
    upload_and_submit(page, path)
    expect(page.locator("#job-status strong")).to_have_text("queued")
    expect(page.locator("#job-status")).to_contain_text("this page refreshes every 2 s")
    shot("queued")

    start_worker()
    expect(page.locator("#job-status strong")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    numbers = report(page)
    assert numbers["rows read"] == numbers["rows imported"] == str(len(rows)), numbers
    assert (numbers["families in the file"], numbers["families created"], numbers["runs created"]) == (
        "lambda", "1", "5"), numbers
    assert (numbers["rows skipped (invalid)"], numbers["problems"]) == ("0", "0"), numbers
    expect(page.locator("tr", has=page.locator("th", has_text="Progress")).locator("td")).to_contain_text("100%")
    expect(page.get_by_text("Statistics refreshed for 1 family.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Rejected rows"))).to_have_count(0)
    shot("report")
    assert Observation.objects.filter(run__family__name="lambda").count() == len(rows)

    page.get_by_role("link", name="Families", exact=True).last.click()
    expect(page.locator("#result_list").get_by_role("link", name="lambda", exact=True)).to_be_visible()
    shot("families")


@pytest.mark.worker
def test_a_bad_csv_shows_each_rejected_row_with_line_column_and_reason_and_imports_nothing(
        page, shot, staff, lambda_rows, tmp_path, start_worker):
    header, rows = lambda_rows
    rows = [list(r) for r in rows[:20]]
    rows[2][header.index("value")] = "n/a"    # line 4 of the file (the header is line 1)
    rows[9][header.index("tokens")] = "-5"    # line 11
    path = write_csv(tmp_path / "lambda-bad.csv", header, rows)
    open_import_form(page, staff)
    upload_and_submit(page, path)
    expect(page.locator("#job-status strong")).to_have_text("queued")

    start_worker()
    expect(page.locator("#job-status strong")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Rejected rows: 2")).to_be_visible()
    table = page.locator("h2:has-text('Rejected rows') + table tbody tr")
    rejected = [row.locator("td").all_inner_texts() for row in table.all()]
    assert rejected == [["4", "value", "not a number: 'n/a'"], ["11", "tokens", "must be > 0, got '-5'"]], rejected
    expect(page.locator("pre.errornote")).to_contain_text("nothing was written")
    shot("rejected")
    assert not Family.objects.exists() and not Observation.objects.exists()
    assert Job.objects.get().status == "failed"
