# ruff: noqa: F811 - the fixtures imported below are, as pytest wants, parameters of the same name
"""The web page's newer parts in a real headless Chromium against the real server: per-file
timing and throughput, the live view across sessions and its per-stage latencies, the request
counters and CPU load, a phone-sized screen, the token prompt, and the page in Chinese.

The browser, the server and the page fixture are the ones of tests/test_serve_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_serve_browser import (  # noqa: F401 - fixtures, used by name
    base_url,
    browser,
    mic_wav,
    open_tab,
    page,
    screenshot,
    settings,
    speech_wav,
)

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow


def test_each_file_shows_its_processing_time_and_rtf_and_the_run_its_throughput(
    page: Page, speech_wav: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio at all" * 10)
    open_tab(page, "files")

    page.locator("#file-input").set_input_files([speech_wav, empty, broken])
    page.locator("#transcribe-btn").click()
    rows = page.locator("#results-body tr")
    good, nothing, bad = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(good).to_have_attribute("data-status", "done", timeout=30_000)
    expect(good.locator(".col-time .proc-time")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(good.locator(".col-time .rtf")).to_have_text(re.compile(r"^RTF \d+\.\d\d$"))
    rtf = float(good.locator(".col-time").get_attribute("data-rtf") or "nan")
    assert 0 < rtf < 10
    # pocketsphinx says how sure it is (the words' posterior); the row shows it.
    expect(good.locator(".col-time .confidence")).to_have_text(re.compile(r"^conf\. \d+%$"))
    assert 0 < float(good.locator(".col-time").get_attribute("data-confidence") or "nan") <= 1
    throughput = page.locator("#files-throughput")
    expect(throughput).to_contain_text("real time")
    assert float(throughput.get_attribute("data-speed") or "nan") > 0

    # Refused as the request's own fault: asking again would fail the same way, so no retry.
    for row, reason in ((nothing, "empty"), (bad, "broken.wav")):
        expect(row).to_have_attribute("data-status", "error")
        expect(row.locator(".row-error")).to_contain_text(reason)
        expect(row.locator(".retry")).to_be_hidden()
        expect(row.locator(".col-time")).to_have_text("")
    screenshot(page, "files-timing")


def test_a_new_session_starts_a_new_view_and_every_stage_of_a_turn_is_shown(page: Page) -> None:
    open_tab(page, "live")
    expect(page.locator("body")).to_have_attribute("data-events-connected", "true")
    table = page.locator("#latency-table")

    page.locator("#start-demo").click()
    expect(table.locator("tbody tr")).to_have_count(2, timeout=40_000)
    # Every stage the feed times has its own figure, however small next to the others.
    first = table.locator("tbody tr").last
    expect(first).to_have_attribute("data-turn", "1")
    for stage in ("endpoint", "asr", "llm_ttft", "tts_first_audio", "voice_to_voice"):
        expect(first.locator(f'td[data-stage="{stage}"]')).to_have_text(re.compile(r"^\d+$"))
    expect(table.locator('thead th[data-stage="llm_ttft"]')).to_have_attribute("title", "LLM first token")
    page.locator("#stop-session").click()
    expect(page.locator("#session-source")).to_have_text("none")

    page.locator("#start-demo").click()
    expect(page.locator("#session-source")).to_have_text("demo")
    # The second session's view holds only its own conversation, counted from its first turn.
    expect(page.locator("#transcript .line.system", has_text="Session started")).to_have_count(1)
    expect(page.locator("#transcript .line.system", has_text="Session ended")).to_have_count(0)
    expect(page.locator("#turn-count")).to_have_text("0")
    expect(table.locator("tbody tr")).to_have_count(0)
    expect(page.locator("#latency-chart")).to_have_attribute("data-bars", "0")
    expect(table.locator("tbody tr")).to_have_count(1, timeout=40_000)
    expect(page.locator("#turn-count")).to_have_text("1")
    expect(page.locator("#transcript .line.user").first).to_have_attribute("data-turn", "1")
    expect(page.locator("#transcript .line.user")).to_have_count(1)
    screenshot(page, "live-second-session")
    page.locator("#stop-session").click()


def test_system_info_counts_failed_uploads_and_recogniser_passes_and_shows_cpu_load(
    page: Page, speech_wav: Path, tmp_path: Path
) -> None:
    before = page.request.get("/info").json()
    broken = []
    for index in range(3):
        path = tmp_path / f"broken-{index}.wav"
        path.write_bytes(b"RIFF not audio" * (index + 5))
        broken.append(path)
    open_tab(page, "files")
    page.locator("#file-input").set_input_files([*broken, speech_wav, speech_wav])
    page.locator("#transcribe-btn").click()
    expect(page.locator("#results")).to_have_attribute("data-errors", "3", timeout=30_000)
    expect(page.locator("#results")).to_have_attribute("data-done", "2", timeout=30_000)

    page.locator("#tab-info").click()
    requests, queue = before["requests"], before["queue"]
    expect(page.locator("#info-requests-failed")).to_have_text(str(requests["failed"] + 3))
    expect(page.locator("#info-requests-succeeded")).to_have_text(str(requests["succeeded"] + 2))
    expect(page.locator("#info-requests-total")).to_have_text(str(requests["total"] + 5))
    # Every pass through the recogniser is a batch, of one request or several.
    batches = int(page.locator("#info-queue-batches").inner_text())
    assert queue["batches"] + 1 <= batches <= queue["batches"] + 2
    expect(page.locator("#info-queue-completed")).to_have_text(str(queue["completed"] + 2))
    expect(page.locator("#info-cpu-percent")).to_have_text(re.compile(r"^\d+(\.\d)? % \(\d+ CPUs\)$"))
    expect(page.locator("#info-cpu-load")).to_have_text(re.compile(r"^[\d.]+ / [\d.]+ / [\d.]+$"))
    screenshot(page, "info-counters")


# Elements that stick out past the right edge of the window, leaving out those inside a box
# that scrolls sideways on purpose (the results table).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (node) => ["auto", "scroll", "hidden"].includes(getComputedStyle(node).overflowX);
  const out = [];
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (!box.width || box.right <= width + 0.5) continue;
    let parent = node.parentElement, clipped = false;
    while (parent && parent !== document.body) { if (scrolls(parent)) { clipped = true; break; } parent = parent.parentElement; }
    if (!clipped) out.push(`${node.tagName.toLowerCase()}#${node.id}.${node.className}: ${Math.round(box.right)}`);
  }
  return out;
}"""


def test_on_a_phone_nothing_overflows_and_every_tab_is_within_reach(
    browser, base_url: str, speech_wav: Path
) -> None:
    context = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = context.new_page()
        for tab in ("files", "record", "live", "info"):
            phone.goto(f"/#{tab}")
            expect(phone.locator("body")).to_have_attribute("data-ready", "true")
            if tab == "files":  # a transcript's text must be readable whole, not cut at the edge
                phone.locator("#file-input").set_input_files(speech_wav)
                phone.locator("#transcribe-btn").click()
                text = phone.locator("#results-body tr .col-text")
                expect(text).to_have_text("what time is it", timeout=30_000)
                box = text.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            if tab == "info":
                expect(phone.locator("body")).to_have_attribute("data-info-loaded", "true")
            width = phone.evaluate("document.documentElement.clientWidth")
            assert phone.evaluate("document.documentElement.scrollWidth") <= width, tab
            assert phone.evaluate(OVERFLOWING) == [], tab
            # Every tab is on screen, whole, without scrolling anything sideways.
            for button in phone.locator('[role="tab"]').all():
                box = button.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, tab
            screenshot(phone, f"phone-{tab}")
        phone.locator("#tab-info").click()
        expect(phone.locator("#panel-info")).to_be_visible()
    finally:
        context.close()


def test_without_a_token_a_browser_is_asked_for_it_and_api_clients_still_get_json(browser, settings) -> None:
    from pydantic import SecretStr

    from voiceloop.testing.serve import running_server

    guarded = settings.model_copy(deep=True)
    guarded.serve.token = SecretStr("kiosk-secret-token")
    with running_server(guarded) as url:
        context = browser.new_context(base_url=url)
        try:
            page = context.new_page()
            answer = page.goto("/#info")
            assert answer is not None and answer.status == 401
            assert answer.headers["content-type"].startswith("text/html")
            page.locator("#token").fill("not-the-token")
            page.locator("#token-form button").click()
            expect(page.locator(".wrong")).to_be_visible()
            page.locator("#token").fill("kiosk-secret-token")
            page.locator("#token-form button").click()
            # In: the page itself, on the tab the address named, the token gone from the address.
            expect(page.locator("#info-device")).to_have_text("cpu")
            assert "token" not in page.url and page.url.endswith("#info")

            fresh = browser.new_context(base_url=url)
            try:
                api = fresh.request.get("/info")
                assert api.status == 401 and api.headers["content-type"] == "application/json"
                assert "token" in api.json()["error"]["message"]
            finally:
                fresh.close()
        finally:
            context.close()


def test_the_page_follows_a_chinese_browser_and_switches_language(
    browser, base_url: str, speech_wav: Path
) -> None:
    context = browser.new_context(base_url=base_url, locale="zh-CN")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        open_tab(page, "files")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#tab-files")).to_have_text("转写文件")
        expect(page.locator("#tab-info")).to_have_text("系统信息")
        expect(page.locator("#lang-switch")).to_have_value("zh")
        page.locator("#file-input").set_input_files(speech_wav)
        expect(page.locator("#transcribe-btn")).to_have_text("开始转写")
        page.locator("#transcribe-btn").click()
        row = page.locator("#results-body tr").first
        expect(row.locator(".status-pill")).to_have_text("完成", timeout=30_000)
        expect(page.locator("#files-summary")).to_have_text("1 个完成")
        screenshot(page, "files-zh")

        page.locator("#tab-live").click()
        expect(page.locator("#live-state")).to_have_text("空闲")
        expect(page.locator("#latency-legend")).to_contain_text("语音结束判定")
        page.locator("#tab-info").click()
        expect(page.locator("#info-requests")).to_contain_text("被拒绝（输入有误）")
        expect(page.locator("#info-cpu")).to_contain_text("CPU 使用率")

        # The switch turns everything, already drawn or not, to English, and is remembered.
        page.locator("#lang-switch").select_option("en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#info-requests")).to_contain_text("Refused (bad input)")
        expect(page.locator("#tab-files")).to_have_text("Transcribe files")
        page.locator("#tab-files").click()
        expect(row.locator(".status-pill")).to_have_text("done")
        expect(page.locator("#files-summary")).to_have_text("1 done")
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#tab-live")).to_have_text("Live session")
        assert errors == []
    finally:
        context.close()
