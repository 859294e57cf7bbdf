"""The endpointer on synthetic probability sequences (32 ms chunks)."""

from __future__ import annotations

import numpy as np
import pytest

from voiceloop.engine.events import SpeechEnded, SpeechPaused, SpeechProgress, SpeechStarted
from voiceloop.vad.endpointer import EndpointConfig, Endpointer, EndpointState, at_judged_level

CHUNK = 512
CHUNK_S = CHUNK / 16_000


def run(probabilities: list[float], config: EndpointConfig | None = None):
    endpointer = Endpointer(config or EndpointConfig(start_ms=64, stop_ms=200, preroll_ms=96))
    events = []
    for index, probability in enumerate(probabilities):
        chunk = np.full(CHUNK, index, dtype=np.float32)  # each chunk carries its own index
        events += endpointer.feed(chunk, probability, at=index * CHUNK_S)
    return endpointer, events


def test_an_utterance_starts_at_its_onset_and_ends_at_its_last_voiced_chunk():
    probabilities = [0.0] * 5 + [0.9] * 10 + [0.0] * 10
    _, events = run(probabilities)
    started = [e for e in events if isinstance(e, SpeechStarted)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(started) == 1 and started[0].at == pytest.approx(5 * CHUNK_S)
    assert len(ended) == 1
    assert ended[0].at == pytest.approx(15 * CHUNK_S)  # end of chunk 14, the last voiced
    # The stop window (200 ms = 7 chunks of silence) closes at the end of chunk 21.
    assert ended[0].detected_at == pytest.approx(22 * CHUNK_S)
    assert ended[0].detected_at - ended[0].at >= 0.2


def test_pre_roll_keeps_the_audio_just_before_the_onset():
    probabilities = [0.0] * 8 + [0.9] * 4 + [0.0] * 8
    _, events = run(probabilities)
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    first_chunk_index = ended.audio[0]
    assert first_chunk_index == 5  # 96 ms of pre-roll = 3 chunks before chunk 8
    assert ended.audio.size == (20 - 5 - (20 - 8 - 4 - 7)) * CHUNK


def test_the_utterance_says_how_much_of_it_is_pre_roll_so_a_reader_can_skip_some():
    """The live transcriber (voiceloop/engine/partials.py) feeds the streaming model only the
    last of the pre-roll: it skips `utterance_preroll` less what it keeps."""
    endpointer, events = run([0.0] * 8 + [0.9] * 4)
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert endpointer.utterance_preroll == 3 * CHUNK  # 96 ms of pre-roll: chunks 5, 6 and 7
    tail = endpointer.utterance_tail(endpointer.utterance_preroll - CHUNK)
    assert tail[0] == 7 and tail[-1] == 11  # from one chunk before the onset on

    short, _ = run([0.0] * 2 + [0.9] * 4)  # less silence before the onset than the pre-roll holds
    assert short.utterance_preroll == 2 * CHUNK


def test_a_single_blip_shorter_than_the_start_window_is_not_speech():
    _, events = run([0.0, 0.9, 0.0, 0.0, 0.0])
    assert events == []


def test_a_short_pause_inside_speech_does_not_end_the_utterance():
    probabilities = [0.9] * 5 + [0.1] * 3 + [0.9] * 5 + [0.0] * 8
    _, events = run(probabilities)
    assert sum(isinstance(e, SpeechEnded) for e in events) == 1
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    assert ended.at == pytest.approx(13 * CHUNK_S)


def test_probabilities_between_the_thresholds_keep_speech_going_but_do_not_start_it():
    config = EndpointConfig(threshold=0.5, neg_threshold=0.35, start_ms=64, stop_ms=200)
    _, events = run([0.4] * 10, config)
    assert events == []
    _, events = run([0.9, 0.9] + [0.4] * 10 + [0.0] * 8, config)
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    assert ended.at == pytest.approx(12 * CHUNK_S)


def test_voiced_time_is_reported_as_it_grows_excluding_pauses():
    probabilities = [0.9] * 4 + [0.0] * 2 + [0.9] * 2
    _, events = run(probabilities)
    progress = [e.voiced_s for e in events if isinstance(e, SpeechProgress)]
    assert progress == pytest.approx([3 * CHUNK_S, 4 * CHUNK_S, 5 * CHUNK_S, 6 * CHUNK_S])


def test_each_report_says_how_sure_vad_has_been_since_the_onset():
    # A residual echo's "speech" (silero 0.5-0.8), a new utterance a real voice (0.97).
    _, events = run([0.0] * 3 + [0.6, 0.7, 0.55] + [0.0] * 10 + [0.6, 0.97, 0.8, 0.9] + [0.0] * 10)
    started = [e.peak_probability for e in events if isinstance(e, SpeechStarted)]
    progress = [e.peak_probability for e in events if isinstance(e, SpeechProgress)]
    assert started == [0.7, 0.97]  # the first's two onset chunks, the second's
    assert progress == [0.7, 0.97, 0.97]  # the most sure so far, never lower
    assert [e.peak_probability for e in events if isinstance(e, SpeechEnded)] == [0.7, 0.97]


def test_the_maximum_utterance_length_cuts_a_monologue():
    config = EndpointConfig(start_ms=64, stop_ms=200, max_utterance_s=1.0)
    endpointer, events = run([0.9] * 40, config)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and ended[0].truncated
    assert ended[0].detected_at - ended[0].started_at == pytest.approx(1.0, abs=CHUNK_S)
    assert endpointer.state in (EndpointState.QUIET, EndpointState.STARTING, EndpointState.SPEAKING)


def test_a_pause_is_reported_once_inside_the_stop_window_so_asr_can_start_early():
    config = EndpointConfig(start_ms=64, stop_ms=200, speculate_ms=96)
    _, events = run([0.9] * 6 + [0.0] * 10, config)
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("SpeechPaused") == 1
    assert kinds.index("SpeechPaused") < kinds.index("SpeechEnded")
    pause = next(e for e in events if isinstance(e, SpeechPaused))
    assert pause.at == pytest.approx(6 * CHUNK_S)
    assert pause.paused_at - pause.at >= 0.096 and pause.paused_at < pause.at + 0.2


def test_speech_after_a_reported_pause_lets_a_later_pause_be_reported_again():
    config = EndpointConfig(start_ms=64, stop_ms=300, speculate_ms=96)
    _, events = run([0.9] * 4 + [0.0] * 4 + [0.9] * 4 + [0.0] * 12, config)
    assert sum(isinstance(e, SpeechPaused) for e in events) == 2
    assert sum(isinstance(e, SpeechEnded) for e in events) == 1


def test_a_quiet_frame_between_chunks_closes_the_stop_window_without_waiting_for_the_chunk():
    endpointer = Endpointer(EndpointConfig(start_ms=64, stop_ms=200))
    loud = np.full(CHUNK, 0.3, np.float32)
    quiet = np.full(CHUNK, 1e-4, np.float32)
    for index in range(4):
        endpointer.feed(loud, 0.95, at=index * CHUNK_S)
    at = 4 * CHUNK_S
    for _ in range(6):  # 192 ms of silence, in whole chunks
        assert endpointer.feed(quiet, 0.05, at=at) == []
        at += CHUNK_S
    assert endpointer.poll(np.full(160, 0.3, np.float32), at) == []  # sound: silero decides
    events = endpointer.poll(np.full(160, 1e-4, np.float32), at)
    assert len(events) == 1 and isinstance(events[0], SpeechEnded)
    # 192 ms of quiet chunks plus one 10 ms frame: ended 22 ms before the next chunk could.
    assert events[0].detected_at - events[0].at == pytest.approx(0.202)


def test_the_utterance_keeps_the_recognisers_copy_while_vad_judges_the_chunk_it_was_given():
    """The listener hands VAD a canceller's hard-cut output and the recogniser its gentler copy
    of the same samples (`kept`): the utterance, a pause and the live tail hold the copy, the
    pre-roll holds it brought down to the judged chunk's level (VAD heard no one there: a
    reply's residual echo); the end of speech is still placed from the judged chunk's loudness."""
    endpointer = Endpointer(EndpointConfig(start_ms=64, stop_ms=200, preroll_ms=96, speculate_ms=100))
    probabilities = [0.0] * 8 + [0.9] * 4 + [0.0] * 8
    events = []
    for index, probability in enumerate(probabilities):
        judged = np.full(CHUNK, 0.5 if probability > 0.5 else 1e-4, dtype=np.float32)
        kept = np.full(CHUNK, -index, dtype=np.float32)
        events += endpointer.feed(judged, probability, at=index * CHUNK_S, kept=kept)
        if index == 10:
            assert endpointer.utterance_tail(0)[-1] == -10
    paused = next(e for e in events if isinstance(e, SpeechPaused))
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    preroll = 3 * CHUNK  # 96 ms of pre-roll: chunks 5 to 7, at the judged chunks' level
    assert np.allclose(ended.audio[:preroll], -1e-4) and np.allclose(paused.audio[:preroll], -1e-4)
    assert set(np.unique(ended.audio[preroll:])) == {
        -float(index) for index in range(8, 20 - (20 - 8 - 4 - 7))
    }
    assert ended.at == pytest.approx(12 * CHUNK_S)  # the judged chunks' last loud block


def test_a_blip_over_a_reply_goes_back_to_the_pre_roll_at_the_level_vad_heard_it():
    """A chunk VAD called speech that came to nothing (the start abandoned) is pre-roll again:
    at the judged level, as the pre-roll around it, not at its uncut copy's."""
    endpointer = Endpointer(EndpointConfig(start_ms=96, stop_ms=200, preroll_ms=160))
    for index, probability in enumerate([0.0, 0.0, 0.9, 0.0, 0.0, 0.9, 0.9, 0.9, 0.0]):
        judged = np.full(CHUNK, 0.02 if probability else 0.001, dtype=np.float32)
        kept = np.full(CHUNK, 0.2 if probability else 0.01, dtype=np.float32)
        if index >= 5:
            judged = kept = np.full(CHUNK, 0.3, dtype=np.float32)  # the user, whom nothing cut
        endpointer.feed(judged, probability, at=index * CHUNK_S, kept=kept)

    audio = endpointer.utterance_tail(0)
    assert np.allclose(audio[: 5 * CHUNK], [0.001] * 2 * CHUNK + [0.02] * CHUNK + [0.001] * 2 * CHUNK)
    assert np.all(audio[5 * CHUNK :] == np.float32(0.3))


def test_the_pre_roll_is_never_made_louder_than_the_recognisers_copy():
    kept = np.full(CHUNK, 0.01, dtype=np.float32)

    assert at_judged_level(kept, np.full(CHUNK, 0.5, dtype=np.float32)) is kept
    assert np.allclose(at_judged_level(kept, np.full(CHUNK, 0.001, dtype=np.float32)), 0.001)
    assert not at_judged_level(np.zeros(CHUNK, np.float32), kept).any()
