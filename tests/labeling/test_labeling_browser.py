"""The labeling page in headless Chromium: one item ranked with the mouse (drag and drop), one with
the keyboard alone, both found in the export; model output shown as text; the admin view.

Needs Debian's chromium at /usr/bin/chromium (Playwright drives it; no `playwright install`)."""

import threading
import time
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from posttrain.data.rankings import read_rankings
from posttrain.labeling.configs import LabelExportConfig
from posttrain.labeling.export import export_rankings
from posttrain.labeling.server import create_app
from posttrain.labeling.store import Store

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = 'Sure. <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> Done.'


def item(id_: str, texts: list[str], question: str) -> dict:
    return {
        "id": id_,
        "prompt": [{"role": "user", "content": question}],
        "completions": [{"text": t, "source": "model:m"} for t in texts],
        "meta": {},
    }


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing: {CHROMIUM} not found. The browser tests need Debian's chromium "
            "package (apt-get install chromium); they do not skip."
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server in a thread of this process; every labeler sees the items in order (5 labelers per item)."""
    db = tmp_path_factory.mktemp("labels") / "labels.sqlite"
    store = Store(db)
    store.add_items(
        [
            item(
                "s0",
                ["Paris.", "Lyon.", "The capital of France is Paris.", HOSTILE],
                "Capital of <b>France</b>?",
            ),
            item("s1", ["4", "5", "Two plus two is 4."], "What is 2 + 2?"),
            item("s2", ["yes", "no"], "Is water wet?"),
        ],
        "s.jsonl",
    )
    tokens = {name: store.add_labeler(name) for name in ("mouse", "viewer", "dee")}
    tokens["admin"] = store.add_labeler("boss", admin=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store, labelers_per_item=5, gold_rate=0), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the labeling server did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield {"url": url, "tokens": tokens, "db": db, "store": store}
    server.should_exit = True
    thread.join(10)


def open_page(browser, site, who: str, bypass_csp: bool = False):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site['url']}/#token={site['tokens'][who]}")
    return page, errors


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{limit} presses of Tab never reached {selector}")


def rows(page) -> list[list[int]]:
    """The ranking on screen, as answer indices per row."""
    return page.eval_on_selector_all(
        "#ranking .row",
        "rs => rs.map(r => [...r.querySelectorAll('.chip')].map(c => Number(c.dataset.answer)))",
    )


def test_rank_one_item_with_the_mouse_and_one_with_the_keyboard_alone_then_export(browser, site, tmp_path):
    page, errors = open_page(browser, site, "mouse")
    expect(page.locator("#item-id")).to_have_text("s0")
    # 1. the mouse: ratings, a flag, then drag and drop
    for i, rating in enumerate([6, 3, 7, 1]):
        page.click(f'#answer-{i} .likert-option:has(input[value="{rating}"])')
    page.check('#answer-3 input[data-flag="inappropriate"]')
    page.check("#none-acceptable")
    page.drag_and_drop('.chip[data-answer="2"]', '.gap[data-gap="0"]')  # answer 3 to a new top row
    assert rows(page) == [[2], [0], [1], [3]]
    page.drag_and_drop('.chip[data-answer="3"]', '.row[data-row="2"]')  # answer 4 ties with answer 2
    assert rows(page) == [[2], [0], [1, 3]]
    page.click("#submit")
    expect(page.locator("#item-id")).to_have_text("s1")

    # 2. the keyboard alone: number keys rate, Tab and Space flag, number keys and arrows rank
    for i, rating in enumerate([5, 2, 7]):
        tab_to(page, f'input[name="likert-{i}"]')
        page.keyboard.press(str(rating))
    page.keyboard.press("Tab")  # answer 3's first flag
    page.keyboard.press("Space")
    page.keyboard.press("Control+Enter")  # the order was never touched
    assert "never changed the ranking" in page.inner_text("#warning") and page.is_visible("#warning")
    page.keyboard.press("3")  # pick answer 3 ...
    for _ in range(4):
        page.keyboard.press("ArrowUp")  # ... tie with 2, pass it, tie with 1, pass it
    assert rows(page) == [[2], [0], [1]] and not page.is_visible("#warning")
    page.keyboard.press("2")
    page.keyboard.press("ArrowUp")  # answer 2 ties with answer 1
    assert rows(page) == [[2], [0, 1]]
    tab_to(page, "#better summary")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type("2 + 2 = 4.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#item-id")).to_have_text("s2")
    assert page.inner_text("#progress-text").startswith("2 ranked")
    assert errors == []

    out = tmp_path / "rankings.jsonl"
    export_rankings(LabelExportConfig(db=site["db"], out=out))
    exported = {r["id"]: r for _, r in read_rankings(out)}
    by_mouse, by_keys = exported["s0/mouse"], exported["s1/mouse"]
    assert by_mouse["ranking"] == [[2], [0], [1, 3]] and by_mouse["likert"] == [6, 3, 7, 1]
    assert by_mouse["flags"][3] == ["inappropriate"] and by_mouse["meta"]["order_touched"] is True
    assert by_mouse["meta"]["none_acceptable"] is True and by_mouse["meta"]["seconds"] is not None
    assert by_keys["ranking"] == [[3], [2], [0, 1]] and by_keys["likert"] == [5, 2, 7, 7]
    assert by_keys["completions"][3] == {"text": "2 + 2 = 4.", "source": "human:mouse"}
    assert by_keys["flags"][2] == ["fails_task"]
    page.close()


def test_model_output_is_shown_as_text_never_as_html(browser, site):
    # without the Content-Security-Policy header's help: the page itself must never parse model output as HTML
    page, errors = open_page(browser, site, "viewer", bypass_csp=True)
    expect(page.locator("#item-id")).to_have_text("s0")
    assert page.inner_text("#answer-3 .text") == HOSTILE
    assert (
        page.locator("#answers").get_by_text("<script>window.__pwned = 1</script>", exact=False).is_visible()
    )
    assert page.inner_text("#conversation .message.user .text") == "Capital of <b>France</b>?"
    assert page.evaluate("window.__pwned") is None  # no script ran
    assert page.evaluate("document.images.length") == 0  # no img element was created
    assert page.locator("#task b, #task script").count() == 0
    page.click("#skip-open")  # then skip it, with a reason
    page.select_option("#skip-reason", "The prompt is unclear or broken")
    page.fill("#skip-detail", "hostile answer")
    page.click("#skip-confirm")
    expect(page.locator("#item-id")).to_have_text("s1")
    viewer = site["store"].labeler_for(site["tokens"]["viewer"])
    [skip] = site["store"].labels(viewer)
    assert skip["kind"] == "skipped" and skip["reason"] == "The prompt is unclear or broken: hostile answer"
    assert errors == []
    page.close()


def test_the_admin_view_shows_progress_agreement_and_gold(browser, site):
    store = site["store"]
    dee = store.labeler_for(site["tokens"]["dee"])
    store.save_label(dee, "s2", "dee-s2", "skipped", {"reason": "cannot judge"})
    page, errors = open_page(browser, site, "admin")
    page.wait_for_selector("#admin-rows tr td")
    summary = page.inner_text("#admin-summary")
    assert "InstructGPT 72.6%" in summary and "pairwise agreement" in summary and "gold accuracy" in summary
    assert "dee" in page.inner_text("#admin-rows")
    page.close()
    labeler_page, _ = open_page(browser, site, "dee")
    labeler_page.wait_for_selector("#task:not([hidden])")
    assert not labeler_page.is_visible('[data-tab="admin"]')
    assert errors == []
    labeler_page.close()
