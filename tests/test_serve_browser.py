"""The `voiceloop serve` web page in a real headless Chromium against the real server.

Everything is offline: pocketsphinx (restricted to the offline profile's phrases) listens,
espeak speaks, the echo backend answers, and the microphone is Chromium's fake capture device
playing a WAV of espeak saying a command. Screenshots of every tab go to runs/screenshots/,
which CI keeps as artifacts.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceloop.config import Settings, load_settings
from voiceloop.testing.clips import spoken_clip

pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need the playwright package (pip install playwright)"
)
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[1] / "runs" / "screenshots"
RATE = 16_000
PHRASE = "what time is it"
# Chromium as root in a container, with nothing reaching out to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def spoken(text: str, after_s: float = 0.5) -> np.ndarray:
    """`text` in espeak's voice with half a second of room before and `after_s` after."""
    return spoken_clip(text, lead_s=0.5, tail_s=after_s)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "what-time.wav"
    sf.write(path, spoken(PHRASE), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone plays, in a loop: the phrase, then two seconds of quiet room
    (long enough for the loop to hear the end of the utterance and answer)."""
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(path, spoken(PHRASE, after_s=2.0), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(mic_wav: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings("offline")
    settings.llm.name = "echo"  # no LLM server to wait for: replies repeat the user
    settings.log.dir = tmp_path_factory.mktemp("runs")
    return settings


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    """One server for the module (each test leaves no session running): loading the model
    and stopping the server are the slow parts."""
    from voiceloop.testing.serve import running_server

    with running_server(settings) as url:
        yield url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(20_000)
    yield page
    page.request.delete("/v1/session")  # whatever the test did, the next one starts idle
    context.close()
    # A script error anywhere on the page fails the test that caused it.
    assert errors == []


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def open_tab(page: Page, tab: str) -> None:
    page.goto(f"/#{tab}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(f"#panel-{tab}")).to_be_visible()


def wait_for_number(page: Page, expression: str, at_least: int, timeout_ms: int = 30_000) -> None:
    """Waits until the page expression (a number, or a string holding one) is >= at_least."""
    page.wait_for_function(f"() => Number({expression}) >= {at_least}", timeout=timeout_ms)


def drop_file(page: Page, selector: str, name: str, data: bytes) -> None:
    """Drops a file on an element the way a drag from the desktop does."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "audio/wav" }));
            return transfer;
        }""",
        [name, list(data)],
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def srt_cues(text: str) -> list[tuple[str, str, str]]:
    """(start, end, text) of each SubRip cue; fails on anything that is not well-formed SRT."""
    cues = []
    for number, block in enumerate(text.strip().split("\n\n"), start=1):
        index, times, *lines = block.split("\n")
        assert index == str(number)
        match = re.fullmatch(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", times)
        assert match, times
        assert match[1] < match[2] and lines
        cues.append((match[1], match[2], " ".join(lines)))
    return cues


def test_uploaded_files_are_transcribed_in_the_table_and_download_as_txt_srt_and_json(
    page: Page, speech_wav: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio at all" * 10)
    open_tab(page, "files")

    page.locator("#file-input").set_input_files([speech_wav, broken])
    rows = page.locator("#results-body tr")
    expect(rows).to_have_count(2)
    drop_file(page, "#drop-zone", "dropped.wav", speech_wav.read_bytes())
    expect(rows).to_have_count(3)
    page.locator("#hotwords").fill("time, weather")
    page.locator("#transcribe-btn").click()

    good, bad, dropped = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(good).to_have_attribute("data-status", "done", timeout=30_000)
    expect(good.locator(".col-text")).to_have_text(PHRASE)
    expect(good.locator(".col-file")).to_contain_text("what-time.wav")
    expect(good.locator(".col-duration")).to_have_text(re.compile(r"0:0\d\.\d"))
    # The broken file fails on its own row, with the server's reason, and nothing else.
    expect(bad).to_have_attribute("data-status", "error")
    expect(bad.locator(".row-error")).to_have_text(re.compile(r"^HTTP 4\d\d.*broken\.wav"))
    expect(bad.locator(".dl-txt")).to_be_disabled()
    expect(dropped.locator(".col-text")).to_have_text(PHRASE, timeout=30_000)
    expect(page.locator("#results")).to_have_attribute("data-done", "2")
    screenshot(page, "files")

    def download(selector: str) -> str:
        with page.expect_download() as event:
            page.locator(selector).click()
        return Path(event.value.path()).read_text(encoding="utf-8")

    assert download("#results-body tr:nth-child(1) .dl-txt").strip() == PHRASE
    verbose = json.loads(download("#results-body tr:nth-child(1) .dl-json"))
    assert verbose["text"] == PHRASE and verbose["duration"] > 1
    cues = srt_cues(download("#results-body tr:nth-child(1) .dl-srt"))
    assert " ".join(text for _, _, text in cues) == PHRASE

    # The page's SRT (built from the segments) says what the server's own SRT says.
    server_srt = page.request.post(
        "/v1/audio/transcriptions",
        multipart={
            "file": {"name": "what-time.wav", "mimeType": "audio/wav", "buffer": speech_wav.read_bytes()},
            "response_format": "srt",
        },
    )
    assert server_srt.ok
    assert [text for _, _, text in srt_cues(server_srt.text())] == [text for _, _, text in cues]

    everything = json.loads(download("#download-all"))
    assert [(item["file"], item["status"]) for item in everything] == [
        ("what-time.wav", "done"),
        ("broken.wav", "error"),
        ("dropped.wav", "done"),
    ]
    assert everything[0]["text"] == PHRASE and "HTTP 4" in everything[1]["error"]


def test_a_recording_from_the_microphone_is_transcribed(page: Page) -> None:
    open_tab(page, "record")
    page.locator("#record-btn").click()
    expect(page.locator("body")).to_have_attribute("data-recording", "true")
    # The fake microphone plays the phrase from the start of its file: record all of it.
    page.wait_for_function(
        "() => { const [m, s] = document.querySelector('#record-time').textContent.split(':');"
        " return Number(m) * 60 + Number(s) >= 3.2 }"
    )
    page.locator("#record-btn").click()
    expect(page.locator("#record-text")).to_have_text(PHRASE, timeout=30_000)
    expect(page.locator("#record-status")).to_contain_text("Done")
    screenshot(page, "record")


def test_system_info_shows_the_device_models_and_limits(page: Page) -> None:
    open_tab(page, "info")
    expect(page.locator("#info-device")).to_have_text("cpu")
    expect(page.locator("#info-models")).to_contain_text("pocketsphinx")
    expect(page.locator("#info-limits")).to_contain_text("50 MB")
    expect(page.locator("#info-versions")).to_contain_text("voiceloop")
    expect(page.locator("#info-cuda-available")).to_have_text(re.compile("yes|no"))
    page.locator("#info-refresh").click()
    expect(page.locator("#info-updated")).to_contain_text("updated")
    screenshot(page, "info")


def test_the_live_view_follows_a_demo_session_turn_by_turn(page: Page) -> None:
    open_tab(page, "live")
    expect(page.locator("body")).to_have_attribute("data-events-connected", "true")
    expect(page.locator("#live-state")).to_have_text("Idle")
    page.locator("#clear-transcript").click()  # the snapshot may hold an earlier test's session

    page.locator("#start-demo").click()
    expect(page.locator("#session-source")).to_have_text("demo")
    expect(page.locator("#live-state")).not_to_have_attribute("data-state", "idle")
    expect(page.locator("#start-demo")).to_be_disabled()

    # The demo script opens with "hello there"; the echo backend answers it.
    first_user = page.locator("#transcript .line.user").first
    expect(first_user).to_contain_text("hello there", timeout=30_000)
    expect(page.locator("#transcript .line.assistant").first).to_contain_text("hello there", timeout=30_000)
    wait_for_number(page, "document.querySelector('#latency-chart').dataset.bars", 1)
    wait_for_number(page, "document.querySelector('#turn-count').textContent", 1)
    expect(page.locator("#v2v-last")).to_have_text(re.compile(r"^\d+ ms$"))
    screenshot(page, "live")

    # A page opened (or reloaded) mid-session rebuilds the conversation from the snapshot.
    page.reload()
    expect(page.locator("#transcript .line.user").first).to_contain_text("hello there")
    wait_for_number(page, "document.querySelector('#latency-chart').dataset.bars", 1)

    page.locator("#kiosk-toggle").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bkiosk\b"))
    expect(page.locator(".site-header")).to_be_hidden()
    screenshot(page, "live-kiosk")
    page.keyboard.press("Escape")
    expect(page.locator(".site-header")).to_be_visible()

    page.locator("#stop-session").click()
    expect(page.locator("#session-source")).to_have_text("none")
    expect(page.locator("#live-state")).to_have_text("Idle")
    expect(page.locator("#transcript .line.system").last).to_contain_text("Session ended")
    expect(page.locator("#start-demo")).to_be_enabled()


def test_talking_through_the_browser_is_heard_and_answered_aloud(page: Page) -> None:
    open_tab(page, "live")
    expect(page.locator("body")).to_have_attribute("data-events-connected", "true")
    page.locator("#clear-transcript").click()  # the snapshot may hold an earlier test's session

    page.locator("#talk").click()
    expect(page.locator("body")).to_have_attribute("data-talk-ready", "true")
    expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#session-source")).to_have_text("browser")

    expect(page.locator("#transcript .line.user").first).to_have_text(re.compile(PHRASE), timeout=40_000)
    # The echo backend's answer, spoken back and charted like any turn.
    answer = page.locator("#transcript .line.assistant", has_text=PHRASE).first
    expect(answer).to_be_visible(timeout=30_000)
    wait_for_number(page, "document.querySelector('#latency-chart').dataset.bars", 1)
    wait_for_number(page, "document.body.dataset.talkSentSamples", RATE)
    # The server streams silence between replies; the greeting and the answer are not silent.
    wait_for_number(page, "document.body.dataset.talkReceivedVoicedSamples", RATE // 2)
    screenshot(page, "live-talk")

    page.locator("#talk").click()
    expect(page.locator("#talk")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#session-source")).to_have_text("none", timeout=15_000)
    expect(page.locator("#live-state")).to_have_text("Idle")


def test_with_a_token_the_page_opened_once_with_it_works_through_its_cookie(
    browser: Browser, settings: Settings, speech_wav: Path
) -> None:
    from pydantic import SecretStr

    from voiceloop.testing.serve import running_server

    guarded = settings.model_copy(deep=True)
    guarded.serve.token = SecretStr("kiosk-secret")
    with running_server(guarded) as url:
        context = browser.new_context(base_url=url)
        try:
            page = context.new_page()
            assert page.goto("/").status == 401  # no token, no page

            page.goto("/?token=kiosk-secret#info")
            expect(page.locator("#info-device")).to_have_text("cpu")
            assert "token" not in page.url  # not left in the address bar, history or screenshots
            expect(page.locator("body")).to_have_attribute("data-events-connected", "true")

            open_tab(page, "files")  # a reload: the cookie alone carries on
            page.locator("#file-input").set_input_files(speech_wav)
            page.locator("#transcribe-btn").click()
            expect(page.locator("#results-body tr .col-text")).to_have_text(PHRASE, timeout=30_000)
        finally:
            context.close()


def test_a_sleeping_kiosk_opens_a_turn_when_the_push_to_talk_button_is_clicked(
    browser: Browser, settings: Settings
) -> None:
    """Kiosk mode (loop.wake): the demo user speaks after the greeting without the wake word,
    which a sleeping loop ignores; the page's button (POST /v1/session/push-to-talk) opens the
    turn instead, and the live view shows the loop awake and the answer."""
    from tests.conftest import script
    from voiceloop.testing.serve import running_server

    kiosk = settings.model_copy(deep=True)
    kiosk.loop.wake = "okay_nabu"
    user = script({"say": "hello there", "pause_ms": 3000})
    with running_server(kiosk, script=user) as url:
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_default_timeout(20_000)
            open_tab(page, "live")
            expect(page.locator("body")).to_have_attribute("data-events-connected", "true")
            button = page.locator("#push-to-talk")

            page.locator("#start-demo").click()
            expect(page.locator("#session-source")).to_have_text("demo")
            expect(button).to_have_attribute("data-attention", "asleep")
            # Once the greeting is over (the user speaks 3 s after it), the button.
            expect(page.locator("#live-state")).to_have_attribute("data-state", "speaking")
            expect(page.locator("#live-state")).to_have_attribute("data-state", "listening")
            button.click()
            expect(button).to_have_attribute("data-attention", "awake")
            expect(button).to_have_text("Push to talk (awake)")

            expect(page.locator("#transcript .line.user").first).to_contain_text(
                "hello there", timeout=30_000
            )
            answer = page.locator("#transcript .line.assistant", has_text="hello there").first
            expect(answer).to_be_visible(timeout=30_000)
            wait_for_number(page, "document.querySelector('#turn-count').textContent", 1)
            screenshot(page, "live-push-to-talk")
            page.request.delete("/v1/session")
        finally:
            context.close()
    assert errors == []
