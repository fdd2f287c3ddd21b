"""The operators' console as an operator uses it, in headless Chromium.

Run by scripts/console-test.sh, which starts the worker and makes the jobs;
the environment names the console (CONSOLE_URL), the operator's token and
name, the scratch database (CONSOLE_DB_URL, read with psql) and where the
screenshots go. Each check compares what the page shows with the database.
"""

import http.server
import os
import subprocess
import sys
import threading
import time

from playwright.sync_api import expect, sync_playwright

URL = os.environ["CONSOLE_URL"]
TOKEN = os.environ["CONSOLE_TOKEN"]
OPERATOR = os.environ["CONSOLE_OPERATOR"]
DB = os.environ["CONSOLE_DB_URL"]
SHOTS = os.environ["SCREENSHOTS"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Every wait of a check is bounded by this (Playwright's expect polls).
TIMEOUT_MS = 15_000

passed = []


def sql(statement):
    """Rows of a statement on the scratch database, as lists of strings."""
    out = subprocess.run(
        ["psql", "-qAtX", "-F", "\t", DB, "-c", statement],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def one(statement):
    return sql(statement)[0][0]


def check(name):
    def wrap(f):
        def run(*args):
            t = time.monotonic()
            f(*args)
            passed.append(name)
            print(f"console_test.py: ok  {name} ({time.monotonic() - t:.1f} s)", flush=True)

        return run

    return wrap


def shot(page, name, full_page=True):
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page)


def wait_until(what, condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@check("nothing but the login form before signing in; a wrong token is refused, slowly")
def login_refused(page):
    for path in ["/ops/", "/ops/jobs", "/ops/workers", "/ops/kinds"]:
        page.goto(URL + path)
        expect(page).to_have_url(URL + "/ops/login")
    expect(page.locator("nav")).to_have_count(0)
    page.fill("#token", "not-the-token-0123456789")
    t = time.monotonic()
    with page.expect_response(lambda r: r.url.endswith("/ops/login") and r.request.method == "POST") as answer:
        page.click("button[type=submit]")
    took = time.monotonic() - t
    assert answer.value.status == 401, answer.value.status
    assert took >= 0.9, f"refused in {took:.2f} s: no delay"
    expect(page.locator("p.error")).to_contain_text("not an operator token")
    shot(page, "login")
    cookies = page.context.cookies()
    assert not any(c["name"] == "plan_ops_session" for c in cookies), cookies


@check("the right token signs in with an HttpOnly, SameSite=Strict session cookie")
def login(page):
    page.goto(URL + "/ops/login")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(URL + "/ops/")
    expect(page.locator("header .who")).to_have_text(OPERATOR)
    cookie = next(c for c in page.context.cookies() if c["name"] == "plan_ops_session")
    assert cookie["httpOnly"], cookie
    assert cookie["sameSite"] == "Strict", cookie
    assert cookie["path"] == "/ops", cookie
    assert cookie["expires"] > time.time() + 60, cookie


@check("the overview shows the failed count and the error code cluster of the last hour")
def overview(page):
    page.goto(URL + "/ops/")
    failed = one(
        "select count(*) from plan_generation_jobs where status = 'failed' "
        "and completed_at > now() - interval '1 hour'"
    )
    expect(page.locator("#failed-hour .value")).to_have_text(failed)
    completed = one(
        "select count(*) from plan_generation_jobs where status = 'completed' "
        "and completed_at > now() - interval '1 hour'"
    )
    expect(page.locator("#completed-hour .value")).to_have_text(completed)
    clusters = sql(
        "select error_code, count(*) from plan_generation_jobs where status = 'failed' "
        "and completed_at > now() - interval '1 hour' group by 1 order by 2 desc, 1"
    )
    rows = page.locator("#top-errors tbody tr")
    expect(rows).to_have_count(len(clusters))
    for i, (code, n) in enumerate(clusters):
        expect(rows.nth(i).locator("td").nth(0)).to_have_text(code)
        expect(rows.nth(i).locator("td").nth(1)).to_have_text(n)
    assert clusters[0][0] == "AI_QUOTA_EXCEEDED", clusters
    ratio = 100 * int(failed) / (int(failed) + int(completed))
    expect(page.locator("#failure-ratio .value")).to_have_text(f"{ratio:.1f} %")
    expect(page.locator("#workers tbody tr")).to_have_count(int(one("select count(*) from plan_workers")))
    expect(page.locator("#listener")).to_contain_text("connected")
    expect(page.locator("#per-minute rect.failed").first).to_be_visible()
    shot(page, "overview")


@check("the failed list, page after page, equals the database, newest first")
def failed_list(page):
    page.goto(URL + "/ops/")
    page.click("#top-errors a >> nth=0")
    expect(page).to_have_url(URL + "/ops/jobs?status=failed&error_code=AI_QUOTA_EXCEEDED")
    page.goto(URL + "/ops/jobs?status=failed")
    shot(page, "jobs-failed")
    shown = []
    pages = 0
    while True:
        pages += 1
        shown += page.locator("#jobs tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.jobId)"
        )
        older = page.locator("#older")
        if older.count() == 0:
            break
        older.click()
        page.wait_for_load_state()
    expected = [
        r[0]
        for r in sql(
            "select id from plan_generation_jobs where status = 'failed' "
            "order by created_at desc, id desc"
        )
    ]
    assert pages >= 2, f"{len(expected)} failed jobs fit on one page: pagination untested"
    assert shown == expected, f"shown {len(shown)}, database {len(expected)}"


@check("a job's page shows its attempts with their error codes and details")
def job_attempts(page):
    job = one(
        "select id from plan_generation_jobs where status = 'failed' "
        "and error_code = 'JSON_PARSE_ERROR' order by created_at limit 1"
    )
    attempts = sql(
        f"select attempt, outcome, coalesce(error_code, '') from plan_job_attempts "
        f"where job_id = '{job}' order by attempt"
    )
    assert len(attempts) >= 2, attempts
    page.goto(f"{URL}/ops/jobs/{job}")
    expect(page.locator("#job-status")).to_have_text("failed")
    items = page.locator("#attempts > li")
    expect(items).to_have_count(len(attempts))
    for i, (n, outcome, code) in enumerate(attempts):
        expect(items.nth(i).locator(".head")).to_contain_text(f"#{n} {outcome}")
        expect(items.nth(i).locator(".head")).to_contain_text(code)
    expect(items.first.locator("pre.detail")).not_to_be_empty()
    shot(page, "job-attempts")

    done = one(
        "select id from plan_generation_jobs where status = 'completed' "
        "and kind = 'weekly_base_plan' order by created_at limit 1"
    )
    page.goto(f"{URL}/ops/jobs/{done}")
    days = int(one(
        "select jsonb_array_length(p.plan -> 'days') from weekly_base_plans p "
        f"join plan_generation_jobs j on j.plan_id = p.id where j.id = '{done}'"
    ))
    expect(page.locator("#plan article.day")).to_have_count(days)
    expect(page.locator("#usage")).to_contain_text("prompt tokens")
    expect(page.locator("#profile")).to_be_visible()
    shot(page, "job-plan")


@check("Retry (confirmed, with the CSRF token) requeues the job and audits the operator")
def retry(page):
    job, user, kind = sql(
        "select id, user_id, kind from plan_generation_jobs where status = 'failed' "
        "and error_code = 'AI_QUOTA_EXCEEDED' order by created_at limit 1"
    )[0]
    page.goto(f"{URL}/ops/jobs/{job}")
    questions = []

    def answer(dialog):
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.click("#retry")
    expect(page.locator("p.notice")).to_contain_text(f"Retried {job}")
    assert questions and "Retry" in questions[0], questions
    new_job = page.locator("#job-id").inner_text()
    assert new_job != job
    row = sql(
        f"select user_id, kind from plan_generation_jobs where id = '{new_job}'"
    )
    assert row == [[user, kind]], row
    audit = sql(
        f"select operator, detail ->> 'newJobId' from operator_actions "
        f"where action = 'retry' and job_id = '{job}'"
    )
    assert audit == [[OPERATOR, new_job]], audit
    # Requeued for real: the worker (the mock answers well again) completes it.
    wait_until(
        "the retried job to complete",
        lambda: one(f"select status from plan_generation_jobs where id = '{new_job}'") == "completed",
    )


@check("a cross-site POST and a POST without the CSRF token are refused and change nothing")
def csrf(page):
    job = one(
        "select id from plan_generation_jobs where status = 'failed' "
        "and error_code = 'AI_QUOTA_EXCEEDED' order by created_at desc limit 1"
    )
    jobs_before = one("select count(*) from plan_generation_jobs")
    audit_before = one("select count(*) from operator_actions")

    # Another site (localhost is not 127.0.0.1's site) submits a form to the
    # console with the operator's browser.
    form = (
        f'<form id="f" method="post" action="{URL}/ops/jobs/{job}/retry">'
        '<input name="csrf" value="guess"><button id="go">win a prize</button></form>'
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *args):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://localhost:{evil.server_address[1]}/")
        with page.expect_response(lambda r: r.url.endswith("/retry")) as answer:
            page.click("#go")
        # SameSite=Strict keeps the cookie home (a sign-in redirect), and
        # the Origin check refuses it anyway.
        assert answer.value.status in (303, 403), answer.value.status
    finally:
        evil.shutdown()

    # Same site, with the session cookie, but no token / a wrong token /
    # another Origin.
    api = page.context.request
    for form, headers in [
        ({}, {}),
        ({"csrf": "00" * 32}, {}),
        ({"csrf": "zz"}, {"origin": URL}),
    ]:
        r = api.post(f"{URL}/ops/jobs/{job}/retry", form=form, headers=headers, max_redirects=0)
        assert r.status == 403, (form, r.status)
        assert "CSRF" in r.text(), r.text()
    page.goto(f"{URL}/ops/jobs/{job}")
    token = page.locator("form[action$='/retry'] input[name=csrf]").get_attribute("value")
    r = api.post(
        f"{URL}/ops/jobs/{job}/retry",
        form={"csrf": token},
        headers={"origin": "http://evil.example"},
        max_redirects=0,
    )
    assert r.status == 403, r.status
    assert one("select count(*) from plan_generation_jobs") == jobs_before
    assert one("select count(*) from operator_actions") == audit_before


@check("workers and kinds: pause and resume are buttons, written to the audit")
def workers_and_kinds(page):
    page.goto(URL + "/ops/workers")
    expect(page.locator("#workers tbody tr")).to_have_count(int(one("select count(*) from plan_workers")))
    expect(page.locator("#workers")).to_contain_text("live")
    shot(page, "workers")

    page.goto(URL + "/ops/kinds")
    row = page.locator("tr[data-kind=meal_plan]")
    page.once("dialog", lambda d: d.accept())
    row.locator("button").click()
    expect(page.locator("p.notice")).to_have_text("meal_plan paused")
    assert one("select paused from plan_job_kinds where kind = 'meal_plan'") == "t"
    shot(page, "kinds")
    page.once("dialog", lambda d: d.accept())
    page.locator("tr[data-kind=meal_plan] button").click()
    expect(page.locator("p.notice")).to_have_text("meal_plan resumed")
    assert one("select paused from plan_job_kinds where kind = 'meal_plan'") == "f"
    audit = sql(
        "select operator, action from operator_actions where detail ->> 'kind' = 'meal_plan' order by id"
    )
    assert audit == [[OPERATOR, "pause"], [OPERATOR, "resume"]], audit
    # A dismissed confirmation sends nothing.
    page.once("dialog", lambda d: d.dismiss())
    page.locator("tr[data-kind=meal_plan] button").click()
    page.wait_for_timeout(300)
    assert one("select paused from plan_job_kinds where kind = 'meal_plan'") == "f"


@check("the overview fits a phone")
def phone(browser, storage):
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        storage_state=storage,
    )
    page = ctx.new_page()
    page.goto(URL + "/ops/")
    expect(page.locator("#failed-hour")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone"
    shot(page, "overview-phone")
    ctx.close()


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(TIMEOUT_MS)
        page = ctx.new_page()
        try:
            login_refused(page)
            login(page)
            overview(page)
            failed_list(page)
            job_attempts(page)
            retry(page)
            csrf(page)
            workers_and_kinds(page)
            phone(browser, ctx.storage_state())
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()
    print(f"console_test.py: {len(passed)} checks passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
