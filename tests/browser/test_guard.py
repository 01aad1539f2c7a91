"""The browser tests' safety net itself: what the page guard counts as a failure, and the pages it passes."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_guard_reports_console_errors_uncaught_errors_missing_files_and_other_origins(page, guard):
    page.goto("/")
    page.evaluate("""async () => {
        console.error("something broke");
        setTimeout(() => { throw new Error("uncaught"); });
        await fetch("/static/missing.css");
        // Nothing leaves the machine: the CSP refuses it, and without one Chromium refuses port 9 (ERR_UNSAFE_PORT).
        await fetch("http://127.0.0.2:9/elsewhere").catch(() => null);
        document.body.insertAdjacentHTML("beforeend", '<p style="color: red">inline style</p>');
    }""")
    page.wait_for_timeout(200)  # the timer's error
    seen = "\n".join(guard.problems)
    assert "console error: something broke" in seen
    assert f"uncaught error on {guard.origin}/: uncaught" in seen
    assert "HTTP 404 for GET " + guard.origin + "/static/missing.css" in seen
    # The pages' Content-Security-Policy (connect-src 'self') has the browser refuse the request before it is
    # made; without it (or for what the policy does not cover) the request itself is reported.
    assert ("refused by the Content-Security-Policy (connect-src): request to another origin "
            "http://127.0.0.2:9/elsewhere" in seen
            or "request to another origin: GET http://127.0.0.2:9/elsewhere" in seen)
    assert "refused by the Content-Security-Policy (style-src-attr): inline" in seen  # pages use static CSS only
    assert "Content Security Policy" not in seen  # Chromium's console lines for the same refusals: not repeated
    with pytest.raises(AssertionError, match="something broke"):
        guard.check("now")
    guard.check("again")  # each problem is reported once


@pytest.mark.parametrize("path", ["/", "/families/", "/accounts/login/", "/api/v1/docs/", "/admin/login/"])
def test_public_pages_load_without_a_problem(page, shot, path):
    response = page.goto(path)
    assert response.status == 200
    page.wait_for_load_state("networkidle")  # the API docs build themselves with scripts
    shot(path.strip("/").replace("/", "-") or "home")
