"""The dashboard shows a seller's live values past its cap as one "Other" bar, last (docs/ingest.md): a real
stack with ``live_max_categories=2``, four categories posted through the gateway."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.test_dashboard import ARGS, CHROMIUM
from tests.support import factories as f
from tests.support.servers import wait_until
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_values_past_the_cap_are_one_other_bar_listed_last(kafka, clickhouse_dsn, tmp_path):
    s = module_settings(kafka, clickhouse_dsn, tmp_path, live_max_categories=2)
    sellers = {name: new_seller(s, name) for name in ("shop", "warmup")}
    stack = Stack(s, tmp_path, sellers)
    try:
        stack.warm_up()
        key, token = sellers["shop"]
        # Five sessions on four categories: "aa" x2 and "bb" are the first two names, "cc" and "dd" are over.
        body = {"events": [f.page_view("category", category=c) for c in ("dd", "aa", "cc", "bb", "aa")]}
        assert stack.post(key, body).status_code == 202
        wait_until(
            lambda: stack.live("shop", token)["live"]["category"] == {"aa": 2, "bb": 1, "~other": 2},
            15,
            interval=0.2,
            what="the capped snapshot",
            alive=stack.worker.alive,
        )
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                dash = b.new_page()
                dash.goto(f"{stack.api.url}/dashboard")
                dash.get_by_label("Read token").fill(token)
                dash.get_by_role("button", name="Open dashboard").click()
                dash.wait_for_selector('#conn[data-state="live"]', timeout=10000)
                items = dash.locator("#cat-list li")
                items.last.wait_for(timeout=5000)
                dash.wait_for_function("document.querySelectorAll('#cat-list li').length === 3", timeout=5000)
                labels = [items.nth(i).locator(".label").inner_text() for i in range(3)]
                counts = [items.nth(i).locator(".n").inner_text() for i in range(3)]
                assert labels == ["aa", "bb", "Other (past the seller's limit)"] and counts == ["2", "1", "2"]
            finally:
                b.close()
    finally:
        stack.close()
