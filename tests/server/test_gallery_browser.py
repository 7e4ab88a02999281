"""The gallery page end to end in a real headless Chromium (Debian's, driven by Playwright) on the demo model:
type a prompt, see the plan, generate, see progress and the preview, see the image appear, rate and tag
it, filter, reload and find the rating kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.server import create_app

from .conftest import KEY, serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip

# Records every text the progress line shows (installed before "Generate" is clicked).
WATCH_PROGRESS = """() => {
  window.seenProgress = [];
  new MutationObserver(() => window.seenProgress.push(document.querySelector('#progress-text').textContent))
    .observe(document.querySelector('#progress-text'), {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def page(generator: ImageGenerator) -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [dev] extra")
    with (
        serving(create_app(generator, api_key=KEY)) as url,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        # The browser answers the page's Basic challenge with the key as password, as a person would.
        context = browser.new_context(http_credentials={"username": "me", "password": KEY}, base_url=url)
        tab = context.new_page()
        tab.set_default_timeout(60_000)  # a loaded CI machine; the whole test takes ~10 s idle
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
        browser.close()
        assert not errors, errors


def test_plan_generate_rate_reload(page: Any) -> None:
    page.goto("/")
    page.wait_for_selector("#model option[value=demo]", state="attached")
    page.wait_for_selector("#empty", state="visible")  # a fresh history: no images yet

    page.fill("#prompt", "a red circle on the left, blue background")
    page.click("#settings summary")
    page.fill("#steps", "8")
    page.fill("#seed", "3")
    page.click("#plan-button")
    page.wait_for_selector("#decisions tr.decision")
    summary = page.text_content("#plan-summary") or ""
    assert "demo" in summary and "8 steps" in summary and "seed 3" in summary
    reasons = page.locator("#decisions tr.decision td:nth-child(3)").all_text_contents()
    sources = page.locator("#decisions tr.decision .source").all_text_contents()
    assert len(reasons) >= 3 and len(sources) == len(reasons)  # every decision: its source and reason
    assert all(len(r.strip()) > len(s) + 3 for r, s in zip(reasons, sources, strict=True))

    page.evaluate(WATCH_PROGRESS)
    page.click("#generate-button")
    card = page.wait_for_selector("#gallery .card")
    assert card is not None
    page.wait_for_function("document.querySelector('#gallery .card .thumb').naturalWidth === 64")
    seen = page.evaluate("window.seenProgress")
    assert any(text.startswith("Step ") for text in seen), seen
    assert seen[-1] == "Done"
    preview = page.get_attribute("#preview", "src") or ""
    assert preview.startswith("data:image/png;base64,") and page.is_visible("#preview")
    assert page.evaluate("document.querySelector('#preview').naturalWidth") > 0
    assert "a red circle" in (card.text_content() or "") and "demo" in (card.text_content() or "")

    page.click("#gallery .card .star >> nth=3")  # four stars
    page.wait_for_function("document.querySelector('#status').textContent === 'Rated 4 stars'")
    page.fill("#gallery .card .tag-input", "keeper")
    page.click("#gallery .card .tag-form button")
    page.wait_for_selector("#gallery .card .tags li:text('keeper')")

    page.reload()
    page.wait_for_selector("#gallery .card")
    assert page.get_attribute("#gallery .card", "data-stars") == "4"
    assert page.locator("#gallery .card .star.on").count() == 4
    assert page.locator("#gallery .card .tags li").all_text_contents() == ["keeper"]

    page.select_option("#filter-stars", "5")  # filters: nothing rated five …
    page.wait_for_selector("#gallery .card", state="detached")
    page.select_option("#filter-stars", "4")  # … one rated four or more, tagged "keeper"
    page.fill("#filter-tag", "keeper")
    page.wait_for_selector("#gallery .card")
    assert page.locator("#gallery .card").count() == 1
