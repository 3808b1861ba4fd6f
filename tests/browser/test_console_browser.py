"""The web console in a real browser: Debian's ``chromium``, driven by Playwright.

One ``tideflow serve`` (tokens on, the examples deployed) and one headless
Chromium for the module. The tests sign in with the server's token, deploy
through the deploy form (a broken definition first: its problems are listed
with their paths), start instances from a workflow's page, watch a waiting
instance's page turn to completed -- without a reload -- when an event sent from
a bus page arrives, and check the diagram marks the current and the failing
state. A workflow with hostile names and data shows them as text (no script
runs). The forms refuse a POST without the session's CSRF token.

Screenshots of the main pages go to ``$TIDEFLOW_SCREENSHOTS`` (``docs/images``
to refresh the committed ones, see docs/console.md), else to a temporary folder.
Without a ``chromium`` on the PATH the module is skipped, and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import Served, copied_database, serve_process

pw = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.timeout(180)  # the first test also starts the server and the browser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true needs Debian's chromium (apt-get install chromium)", pytrace=False)
    pytest.skip("no chromium on the PATH (apt-get install chromium)", allow_module_level=True)

WAITING = """\
id: console-approval
version: '1.0'
specVersion: '0.8'
name: Console approval
start: Prepare
events:
  - name: Approved
    type: com.example.console.approved
    source: /console-test
states:
  - name: Prepare
    type: inject
    data:
      prepared: true
    transition: Await approval
  - name: Await approval
    type: event
    onEvents:
      - eventRefs: [Approved]
        eventDataFilter:
          toStateData: ${ .approval }
    transition: Done
  - name: Done
    type: inject
    data:
      done: true
    end: true
"""
HOSTILE_NAME = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"
HOSTILE = f"""\
id: console-hostile
version: '1.0'
specVersion: '0.8'
name: '{HOSTILE_NAME}'
start: '<b>Load</b>'
states:
  - name: '<b>Load</b>'
    type: inject
    data:
      note: '</pre><script>window.__xss=3</script>'
    transition: '<img src=y onerror="window.__xss=4">'
  - name: '<img src=y onerror="window.__xss=4">'
    type: operation
    actions: []
    stateDataFilter:
      output: '${{ error("<svg onload=window.__xss=5>") }}'
    end: true
"""
BROKEN = "id: console-broken\nversion: '1.0'\nspecVersion: '0.8'\nstart: A\nstates: 3\n"


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_console_browser"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("console")
    with serve_process(database, home, "--workflows", str(EXAMPLES)) as running:
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TIDEFLOW_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(server: Served) -> Iterator[Any]:
    """Chromium, started after the server: Playwright's sync API runs an event loop of its
    own in this thread, where the database fixture's loop could not run after it."""
    with pw.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


def _login(browser: Any, server: Served) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server.url + "/")
    assert "/ui/login" in page.url  # tokens are on: the console asks for one
    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    return page


@pytest.fixture(scope="module")
def page(browser: Any, server: Served) -> Iterator[Any]:
    signed_in = _login(browser, server)
    yield signed_in
    signed_in.context.close()


def _start(page: Any, server: Served, workflow: str, data: str = "{}") -> str:
    page.goto(f"{server.url}/ui/workflows/{workflow}")
    page.get_by_label("Input (a JSON object)").fill(data)
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{server.url}/ui/instances/*")
    return str(page.url.rsplit("/", 1)[1])


def _status(page: Any, wanted: str) -> None:
    pw.expect(page.locator("#status")).to_have_text(wanted, timeout=30_000)


def test_login_sets_a_strict_http_only_cookie_and_refuses_a_bad_token(
    browser: Any, server: Served
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/ui/instances")
    page.get_by_label("API token").fill("tf_000000000000_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    pw.expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/ui/instances")  # back where it was going
    (cookie,) = context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert server.token not in cookie["value"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(server.url + "/")
    assert "/ui/login" in page.url
    context.close()


def test_workflows_list_and_a_workflow_page_with_its_diagram(
    page: Any, server: Served, shots: Path
) -> None:
    page.goto(server.url + "/")
    table = page.locator("#workflows")
    pw.expect(table).to_contain_text("hello-world")
    pw.expect(table).to_contain_text("credit-callback")
    page.screenshot(path=str(shots / "console-workflows.png"))
    page.get_by_role("link", name="credit-callback").click()
    states = ["Check credit", "Decide", "Approved", "Rejected"]
    for state in states:
        pw.expect(page.locator(f'svg.diagram g.node[data-state="{state}"]')).to_have_count(1)
    assert page.locator("svg.diagram path.edge.condition").count() >= 2
    pw.expect(page.locator("pre.source")).to_contain_text("type: callback")
    page.screenshot(path=str(shots / "console-workflow.png"), full_page=True)


def test_deploy_lists_problems_with_paths_then_deploys(
    page: Any, server: Served, shots: Path
) -> None:
    page.goto(server.url + "/ui/deploy")
    page.get_by_label("Definition (YAML or JSON)").fill(BROKEN)
    page.get_by_role("button", name="Deploy").click()
    problems = page.locator("ul.problems")
    pw.expect(problems).to_contain_text("states")
    pw.expect(problems).to_contain_text("must be an array")
    pw.expect(page.get_by_label("Definition (YAML or JSON)")).to_have_value(BROKEN)
    page.screenshot(path=str(shots / "console-deploy-problems.png"))
    page.get_by_label("Definition (YAML or JSON)").fill(WAITING)
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url(server.url + "/ui/workflows/console-approval")
    pw.expect(page.locator("h1")).to_contain_text("console-approval")


def test_a_waiting_instance_goes_live_to_completed_when_an_event_is_sent(
    page: Any, browser: Any, server: Served, shots: Path
) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth) as http:
        live = WAITING.replace("id: console-approval", "id: console-approval-live")
        http.post(
            "/workflows", content=live, headers={"content-type": "application/yaml"}
        ).raise_for_status()
    instance = _start(page, server, "console-approval-live", '{"order": 7}')
    _status(page, "waiting")
    current = page.locator("svg.diagram g.node.current")
    pw.expect(current).to_have_attribute("data-state", "Await approval")
    pw.expect(page.locator("#timeline")).to_contain_text("state.entered")
    page.evaluate("window.__same_page = true")
    page.screenshot(path=str(shots / "console-instance-waiting.png"), full_page=True)

    sender = page.context.new_page()
    sender.goto(server.url + "/ui/buses/default")
    sender.get_by_label("Type").fill("com.example.console.approved")
    sender.get_by_label("Source").fill("/console-test")
    sender.get_by_label("Data (JSON)").fill('{"approval": {"by": "grace"}}')
    sender.get_by_role("button", name="Send").click()
    pw.expect(sender.locator("#events")).to_contain_text("com.example.console.approved")
    sender.screenshot(path=str(shots / "console-bus.png"), full_page=True)
    sender.close()

    _status(page, "completed")  # the open page follows the instance, no reload
    assert page.evaluate("window.__same_page") is True
    pw.expect(page.locator("#output")).to_contain_text('"by": "grace"')
    pw.expect(page.locator("#timeline")).to_contain_text("Done")
    pw.expect(page.locator("svg.diagram g.node.current")).to_have_count(0)
    page.screenshot(path=str(shots / "console-instance.png"), full_page=True)
    assert instance in page.url


def test_instances_list_filters_by_status_and_workflow(
    page: Any, server: Served, shots: Path
) -> None:
    for _ in range(2):
        _start(page, server, "hello-world", '{"name": "Ada"}')
    page.goto(server.url + "/ui/instances")
    page.get_by_label("Workflow").fill("hello-world")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.instances tbody tr")
    pw.expect(rows.first).to_be_visible()
    assert rows.count() >= 1
    for status in rows.evaluate_all("rows => rows.map(r => r.dataset.status)"):
        assert status == "completed"
    assert all("hello-world" in t for t in rows.all_inner_texts())
    page.goto(server.url + "/ui/instances?limit=1")
    pw.expect(page.locator("table.instances tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Older instances").click()
    pw.expect(page.locator("table.instances tbody tr")).to_have_count(1)
    page.goto(server.url + "/ui/instances")
    page.screenshot(path=str(shots / "console-instances.png"))


def test_hostile_names_and_data_are_shown_as_text_and_the_failing_state_is_marked(
    page: Any, server: Served
) -> None:
    dialogs: list[str] = []

    def seen(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    page.goto(server.url + "/ui/deploy")
    page.get_by_label("Definition (YAML or JSON)").fill(HOSTILE)
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url(server.url + "/ui/workflows/console-hostile")
    pw.expect(page.locator("main")).to_contain_text(HOSTILE_NAME)
    _start(page, server, "console-hostile", '{"x": "<script>window.__xss=6</script>"}')
    _status(page, "failed")
    failing = page.locator("svg.diagram g.node.failed")
    pw.expect(failing).to_have_attribute("data-state", '<img src=y onerror="window.__xss=4">')
    pw.expect(page.locator("main")).to_contain_text("<script>window.__xss=6</script>")
    ended = page.locator("#ended")
    first_end = ended.inner_text()
    page.get_by_role("button", name="Retry").click()  # the failed state runs again...
    pw.expect(page.get_by_role("status")).to_have_text("retry: done")
    _status(page, "failed")  # ...and its jq error fails it again, later
    pw.expect(ended).not_to_have_text(first_end)
    assert ended.inner_text() > first_end
    for where in ("/", "/ui/instances", "/ui/workflows/console-hostile"):
        page.goto(server.url + where)
        assert page.locator("main script, main img, svg.diagram script").count() == 0
    assert page.evaluate("window.__xss === undefined")
    assert dialogs == []


def test_buses_page_lists_buses_subscriptions_and_timers(page: Any, server: Served) -> None:
    page.goto(server.url + "/ui/buses")
    buses = page.locator("#buses")
    pw.expect(buses).to_contain_text("default")
    pw.expect(buses).to_contain_text("tideflow.lifecycle")
    pw.expect(page.locator("#subscriptions")).to_contain_text("tideflow.workflows")
    page.get_by_role("link", name="tideflow.lifecycle").first.click()
    pw.expect(page.locator("#events")).to_contain_text("io.tideflow.instance")


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    page: Any, server: Served
) -> None:
    no_token = page.request.post(
        server.url + "/ui/workflows/hello-world/start",
        form={"input": "{}"},
        max_redirects=0,
    )
    assert no_token.status == 403
    assert "CSRF" in no_token.text()
    foreign = page.request.post(
        server.url + "/ui/deploy",
        form={"source": WAITING, "csrf": "whatever"},
        headers={"origin": "http://evil.example"},
        max_redirects=0,
    )
    assert foreign.status == 403
