"""The review page in a real browser (Playwright driving Debian's chromium): keyboard only.

Skips when Playwright or chromium is not installed (apt-get install chromium; pip install
playwright; no browser download is needed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.images import write_color_folder
from helpers.review import review_server, write_inbox
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.review.ledger import read_ledger

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HOSTILE = '<img src=x onerror="window.pwned=1">'


@pytest.fixture(scope="module")
def browser():
    executable = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if executable is None:
        pytest.skip("no chromium installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def shown(page) -> str:  # noqa: ANN001 -- a Playwright page
    return page.get_attribute("#frame", "data-name")


def test_label_skip_undo_and_new_class_with_the_keyboard(browser, tmp_path: Path) -> None:  # noqa: ANN001
    dataset = write_color_folder(tmp_path / "data", per_class=2)
    inbox = tmp_path / "inbox"
    names = write_inbox(inbox, [("red", [["red", 0.45], ["green", 0.44]]), ("green", [["green", 0.5], ["red", 0.3]]),
                                ("blue", [["red", 0.6], ["blue", 0.1]])], source=HOSTILE)
    with review_server(inbox, dataset, who="ana") as server:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")
        assert shown(page) == names[0]  # the most uncertain first
        assert page.text_content("#suggestion") == "red (0.450)"
        assert HOSTILE in page.text_content("#details") and page.evaluate("window.pwned") is None
        assert page.locator("#classes button").all_text_contents() == ["1 blue", "2 green", "3 red"]

        page.keyboard.press("Enter")  # accept the suggestion: red
        page.wait_for_selector(f"#frame[data-name='{names[1]}']")
        assert (dataset / "red" / names[0]).is_file() and not (inbox / names[0]).exists()
        page.keyboard.press("Space")  # skip: stays in the inbox, comes last
        page.wait_for_selector(f"#frame[data-name='{names[2]}']")
        page.keyboard.press("Backspace")  # undo the skip
        page.wait_for_selector(f"#frame[data-name='{names[1]}']")
        page.keyboard.press("Backspace")  # undo the label
        page.wait_for_selector(f"#frame[data-name='{names[0]}']")
        assert (inbox / names[0]).is_file() and not (dataset / "red" / names[0]).exists()

        page.keyboard.press("3")  # red, by its key
        page.wait_for_selector(f"#frame[data-name='{names[1]}']")
        page.keyboard.press("2")  # green
        page.wait_for_selector(f"#frame[data-name='{names[2]}']")
        page.keyboard.press("+")
        page.keyboard.type("a/b")
        page.keyboard.press("Enter")
        page.wait_for_selector("#status.error")
        assert "class name 'a/b' cannot be a folder name" in page.text_content("#status")
        assert shown(page) == names[2] and not (dataset / "a").exists()
        page.keyboard.press("+")
        page.keyboard.type("cyan")
        page.keyboard.press("Enter")
        page.wait_for_selector("#frame[hidden]", state="attached")
        assert "every frame has been decided" in page.text_content("#suggestion")
        assert "labelled cyan" in page.text_content("#status")
        page.close()
    assert (dataset / "red" / names[0]).is_file() and (dataset / "green" / names[1]).is_file()
    assert (dataset / "cyan" / names[2]).is_file() and list(inbox.glob("*.jpg")) == []
    ledger = read_ledger(dataset)
    assert [(e["action"], e.get("label"), e.get("suggested")) for e in ledger] == [
        ("label", "red", "red"), ("undo", None, None), ("label", "red", "red"), ("label", "green", "green"),
        ("label", "cyan", "red")]
    assert all(e["who"] == "ana" for e in ledger) and ledger[1]["undoes"] == ledger[0]["id"]


@pytest.mark.slow  # ~5 s: the runtime loads the model and RISE runs 500 masked inferences
def test_heatmap_on_demand_from_an_artifact(browser, tmp_path: Path) -> None:  # noqa: ANN001
    dataset = write_color_folder(tmp_path / "data", per_class=1)
    names = write_inbox(tmp_path / "inbox", [("blue", [["blue", 0.4], ["red", 0.3]])])
    model = make_onnx(tmp_path / "tiny.onnx", TinyNet(), tiny_metadata())
    with review_server(tmp_path / "inbox", dataset, model=model) as server:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector(f"#frame[data-name='{names[0]}']")
        assert page.is_hidden("#heatmap")
        page.keyboard.press("?")  # the model's top class, RISE through the runtime (no TensorFlow)
        page.wait_for_selector("#heatmap:not([hidden])", timeout=60_000)
        assert page.evaluate("document.getElementById('heatmap').naturalWidth") > 0
        page.keyboard.press("?")
        assert page.is_hidden("#heatmap")
        page.close()
