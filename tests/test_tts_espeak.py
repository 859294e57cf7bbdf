"""The offline espeak-ng voice, exercised through the real library from the wheel."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voiceloop.audio.frames import SAMPLE_RATE, rms_dbfs
from voiceloop.config import load_settings
from voiceloop.tts import espeak
from voiceloop.tts.base import SpeechSynthesizer, TtsError


def duration_s(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


def test_english_renders_a_plausible_utterance_in_the_pipeline_format() -> None:
    audio = espeak.render("hello there, how are you")

    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.8 <= duration_s(audio) <= 4.0
    assert rms_dbfs(audio) > -35.0
    assert np.abs(audio).max() <= 1.0


def test_the_same_text_renders_the_same_samples_whatever_was_said_before() -> None:
    first = espeak.render("what time is it", "en-us+f3")
    espeak.render("something else entirely, to move espeak's internal state on", "en-us")
    espeak.render("今天天气很好", "cmn")

    assert np.array_equal(espeak.render("what time is it", "en-us+f3"), first)


def test_faster_rate_gives_shorter_audio() -> None:
    text = "set a timer for five minutes"
    assert duration_s(espeak.render(text, rate_wpm=300)) < duration_s(espeak.render(text))


def test_mandarin_is_spoken_with_mandarin_rules() -> None:
    text = "今天天气很好"
    audio = espeak.render(text, "cmn")

    assert duration_s(audio) > 1.0 and rms_dbfs(audio) > -35.0
    mandarin = espeak.phonemes(text, "cmn")
    assert any(tone in mandarin for tone in "12345"), mandarin  # tone numbers on syllables
    assert "tʃˈaɪniːz" not in mandarin
    # What the English voice does with it instead: "Chinese letter" six times.
    assert "tʃˈaɪniːz" in espeak.phonemes(text, "en-us")


@pytest.mark.parametrize("language", ["en-gb", "zh"])
def test_language_codes_that_are_not_voice_file_names_still_pick_a_voice(language: str) -> None:
    assert duration_s(espeak.render("hello", language)) > 0.2


@pytest.mark.parametrize("voice", ["en-us+m3", "en-us+f3", "cmn+f2"])
def test_variants_render(voice: str) -> None:
    assert rms_dbfs(espeak.render("hello there", voice)) > -35.0


@pytest.mark.parametrize("voice", ["xx-nosuchvoice", "en-us+nosuchvariant"])
def test_an_unknown_voice_is_an_error_naming_it(voice: str) -> None:
    with pytest.raises(TtsError, match="nosuch"):
        espeak.render("hello", voice)
    with pytest.raises(TtsError, match="nosuch"):
        espeak.EspeakVoice(voice=voice)


def test_blank_text_renders_nothing() -> None:
    assert espeak.render("  \n").size == 0


def test_list_voices_names_voices_render_accepts() -> None:
    voices = espeak.list_voices()

    assert {"en-us", "cmn"} <= set(voices)


def test_renders_from_two_threads_at_once_match_renders_made_alone() -> None:
    jobs = [("turn on the lights", "en-us"), ("你好，世界", "cmn")] * 4
    expected = [espeak.render(text, voice) for text, voice in jobs]
    results: list[np.ndarray | None] = [None] * len(jobs)

    def work(indices: range) -> None:
        for i in indices:
            results[i] = espeak.render(*jobs[i])

    threads = [threading.Thread(target=work, args=(range(k, len(jobs), 2),)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert all(np.array_equal(got, want) for got, want in zip(results, expected, strict=True))


@pytest.mark.asyncio
async def test_synthesize_streams_the_rendered_audio() -> None:
    voice = espeak.EspeakVoice(voice="en-us", rate_wpm=175)
    assert isinstance(voice, SpeechSynthesizer)

    chunks = [chunk async for chunk in voice.synthesize("play some music")]
    await voice.aclose()

    assert chunks and all(chunk.dtype == np.float32 for chunk in chunks)
    assert np.array_equal(np.concatenate(chunks), espeak.render("play some music"))


@pytest.mark.asyncio
async def test_synthesize_yields_nothing_for_blank_text() -> None:
    voice = espeak.EspeakVoice()
    assert [chunk async for chunk in voice.synthesize("   ")] == []


def test_create_takes_the_voice_and_rate_from_settings() -> None:
    settings = load_settings(tts={"voice": "cmn", "espeak": {"rate_wpm": 220}})
    voice = espeak.create(settings.tts.espeak, settings.tts)

    assert (voice.name, voice.voice, voice.rate_wpm) == ("espeak", "cmn", 220)
    with pytest.raises(TtsError, match="klingonese"):
        klingon = load_settings(tts={"voice": "klingonese"})
        espeak.create(klingon.tts.espeak, klingon.tts)
