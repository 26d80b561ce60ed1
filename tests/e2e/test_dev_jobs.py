"""The local /dev/jobs page in Chromium: a company is warned by the nightly job run by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.flows import open_last_mail_to, sign_up_in_browser

pytestmark = pytest.mark.e2e


def test_running_the_nightly_job_by_hand_warns_an_idle_company(page, phone_page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    email = sign_up_in_browser(page)
    page.goto("/dev/jobs")
    assert page.get_by_role("heading", level=1).inner_text() == "Scheduled jobs"
    screenshot(page, "dev-jobs-desktop")
    # 166 days from now, the company's idle warning is due (180 days, 14 days' notice).
    warn_day = datetime.now(UTC).date() + timedelta(days=166)
    inactivity = page.locator("#job-inactivity")
    inactivity.locator("input[name=as_of]").fill(warn_day.isoformat())
    inactivity.get_by_role("button", name="Run now").click()
    page.wait_for_selector("#job-summary")
    # Companies other browser tests signed up today are warned too.
    assert int(page.locator('[data-count="warned"]').inner_text()) >= 1
    screenshot(page, "dev-jobs-summary-desktop")
    text = open_last_mail_to(page, email)
    assert "will be set inactive" in page.locator(".mail-subject").inner_text()
    assert "/login" in text
    assert errors == []

    phone_page.goto("/dev/jobs")
    aging = phone_page.locator("#job-aging")
    aging.get_by_role("button", name="Run now").click()
    phone_page.wait_for_selector("#job-summary")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on a phone
    screenshot(phone_page, "dev-jobs-summary-phone")
