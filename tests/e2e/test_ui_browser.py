"""The Airflow 3 UI after a demo run, in headless Chromium: log in, open the DAG's grid and a step task's log,
and see the output the step's SageMaker job printed. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from e2e_support import ARTIFACTS, REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from e2e_support import FollowedRun

    from airflow_provider_smpipe.demo.stack import AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download does not work here: drive the Debian chromium instead.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "browser"


def _ensure_chromium() -> None:
    if shutil.which(CHROMIUM):
        return
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "system-deps.sh")], capture_output=True, text=True, check=False
    )
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing and scripts/system-deps.sh could not install it: {result.stderr}")


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _log_in(page: Any, demo_stack: AirflowStack) -> None:
    page.goto(demo_stack.api_url + "/")
    page.wait_for_url("**/auth/login**", timeout=30_000)
    page.locator("input[name=username]").fill(demo_stack.username)
    page.locator("input[name=password]").fill(demo_stack.password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)


def test_step_output_is_visible_in_the_ui(
    browser_page: Any, demo_stack: AirflowStack, churn_run: FollowedRun
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    _log_in(page, demo_stack)
    page.screenshot(path=str(SCREENSHOTS / "01-home.png"))

    run_url = f"{demo_stack.api_url}/dags/{churn_run.dag_id}/runs/{quote(churn_run.run_id, safe='')}"
    page.goto(run_url)
    expect(page.get_by_text("upload_dataset").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("report").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "02-grid.png"))

    page.goto(f"{run_url}/tasks/churn.preprocess")
    expect(page.get_by_text("SageMakerProcessingStepOperator").first).to_be_visible(timeout=30_000)
    # Printed by dags/churn/code/preprocess.py inside the SageMaker job, streamed by the step's trigger.
    expect(page.get_by_text("preprocessing done: 16 features").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("dropped 15 duplicate rows").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "03-preprocess-log.png"), full_page=True)
