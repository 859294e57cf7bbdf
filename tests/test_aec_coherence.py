"""Held speech over a reply, asked how much of it the reference explains (aec/coherence.py).

After someone walks past, the filter's residual is the reply's own voice through the difference
of two rooms: silero is sure of it and the recogniser hears it as a phrase. A user talking over
the reply is not the reply, even in the same synthetic voice at the same pitch. The threshold
asked is the profile's own (`turn.echo_coherence`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceloop.aec import speex
from voiceloop.aec.coherence import EchoCoherence, RecentFrames, coherence
from voiceloop.aec.compensated import DriftCompensated
from voiceloop.aec.refit import FIT_S
from voiceloop.aec.residual import ResidualSuppressor
from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.audio.room_echo import walked_past
from voiceloop.audio.virtual import at_voice_level, room_impulse_response, trim_silence
from voiceloop.config import load_settings
from voiceloop.engine.events import SpeechEnded
from voiceloop.engine.listener import COHERENCE_MIN_S, Listener, _read_ring, _write_ring
from voiceloop.session.log import SessionLog
from voiceloop.tts.espeak import render
from voiceloop.vad.endpointer import Endpointer
from voiceloop.vad.silero import SileroVad

THRESHOLD = load_settings("default").turn.echo_coherence
PARTLY = load_settings("default").turn.echo_coherence_with_mic
MIC_THRESHOLD = load_settings("default").turn.mic_coherence
ECHO_DELAY = int(0.012 * SAMPLE_RATE)
WINDOW = int(COHERENCE_MIN_S * SAMPLE_RATE)


def through(room: np.ndarray, sound: np.ndarray) -> np.ndarray:
    echo = np.convolve(sound, room)[: sound.size]
    return np.concatenate([np.zeros(ECHO_DELAY), echo])[: sound.size]


def reply() -> np.ndarray:
    return at_voice_level(trim_silence(render("You said: what is the weather like today.")))


def aligned(reference: np.ndarray, residual: np.ndarray) -> float:
    return coherence(reference[:-ECHO_DELAY], residual[ECHO_DELAY:])


def test_what_a_walk_past_leaves_is_explained_by_the_reference() -> None:
    reference = reply()[: 2 * WINDOW]
    before = room_impulse_response(0.3, np.random.default_rng(5))
    after = walked_past(before, np.random.default_rng(6))
    noise = 1e-3 * np.random.default_rng(7).standard_normal(reference.size)
    residual = through(after, reference) - through(before, reference) + noise
    for start in (0, WINDOW // 2, WINDOW):  # wherever the blip falls in the reply
        window = slice(start, start + WINDOW)
        assert aligned(reference[window], residual[window]) >= THRESHOLD


@pytest.mark.parametrize("words", ["stop", "thank you", "never mind"])
def test_a_user_in_the_replys_own_voice_is_not(words: str) -> None:
    """espeak over espeak, as in bench_bargein: two voices at one pitch, phase-locked."""
    reference = reply()[:WINDOW]
    user = at_voice_level(trim_silence(render(words, "en-us")))[:WINDOW]
    user = np.pad(user, (0, WINDOW - user.size))
    echo = through(room_impulse_response(0.3, np.random.default_rng(5)), reference)
    residual = user + 0.1 * echo  # a filter that removes 20 dB, the user talking over it
    assert aligned(reference, residual) < THRESHOLD


def test_the_frames_asked_for_are_the_ones_measured() -> None:
    """Echo for 0.5 s, then a voice the reply does not explain, then silence from the speaker."""
    rng = np.random.default_rng(8)
    reference = reply()[: int(1.0 * SAMPLE_RATE)]
    echo = through(room_impulse_response(0.3, np.random.default_rng(5)), reference)
    voice = at_voice_level(trim_silence(render("turn off the lights", "en-us+m3")))
    half = reference.size // 2
    residual = echo.copy()
    residual[half:] = voice[: reference.size - half]
    frames = RecentFrames(2.0)
    for start in range(0, reference.size, FRAME_SAMPLES):
        part = slice(start, start + FRAME_SAMPLES)
        frames.add(echo[part] + 1e-3 * rng.standard_normal(FRAME_SAMPLES), reference[part], residual[part])
    for _ in range(20):  # the reply has stopped: 0.2 s of nothing played
        frames.add(np.zeros(FRAME_SAMPLES), np.zeros(FRAME_SAMPLES), np.zeros(FRAME_SAMPLES))
    echo_part = frames.echo_coherence(frames_ago=120, frames=45)
    voice_part = frames.echo_coherence(frames_ago=70, frames=45)
    assert echo_part is not None and echo_part.residual >= THRESHOLD
    assert voice_part is not None and voice_part.residual < THRESHOLD
    # The mic held the echo throughout: explained in both (the user's voice was never in it).
    assert echo_part.mic is not None and echo_part.mic >= MIC_THRESHOLD
    assert voice_part.mic is not None and voice_part.mic >= MIC_THRESHOLD
    # Not asked for the mic (`turn.echo_coherence_with_mic = 0`): the residual's alone, the same.
    assert frames.echo_coherence(frames_ago=120, frames=45, with_mic=False) == (echo_part.residual, None)
    assert frames.echo_coherence(frames_ago=20, frames=20) is None  # the speaker was silent
    assert frames.echo_coherence(frames_ago=10, frames=8) is None  # too short to tell
    # Begun before the first frame kept (120 here): measured over what is kept of it, the echo.
    older_than_kept = frames.echo_coherence(frames_ago=150, frames=60)
    assert older_than_kept is not None and older_than_kept.residual >= THRESHOLD


def coherence_after(mic: np.ndarray, reference: np.ndarray, onset_s: float) -> EchoCoherence | None:
    """The default profile's canceller over the room; asked as the listener asks once speech
    that began at `onset_s` has ended 0.3 s later (and the stop window after it)."""
    from tests.test_aec_drift import cancelled

    canceller = DriftCompensated(speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True))
    end = int((onset_s + 0.55) * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    cancelled(canceller, mic[:end], reference[:end])
    per_s = SAMPLE_RATE // FRAME_SAMPLES
    frames_ago = round((end / SAMPLE_RATE - onset_s + 0.05) * per_s)
    return canceller.echo_coherence(frames_ago, round(COHERENCE_MIN_S * per_s))


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_the_cancellers_residual_after_a_walk_is_the_echo_and_a_user_over_it_is_not() -> None:
    from tests.test_aec_drift import LEAD_S, drifting_room

    walk_s = LEAD_S + 7.0
    mic, reference = drifting_room(0.0, path_change_at_s=walk_s)
    assert (after_the_walk := coherence_after(mic, reference, walk_s + 0.06)) is not None
    assert after_the_walk.residual >= THRESHOLD

    mic, reference = drifting_room(0.0)
    user = at_voice_level(trim_silence(render("stop", "en-us+m3")))
    onset = int(walk_s * SAMPLE_RATE)
    talked_over = mic.copy()
    talked_over[onset : onset + user.size] += user
    assert (over_the_user := coherence_after(talked_over, reference, walk_s)) is not None
    assert over_the_user.residual < THRESHOLD


def speech_heard(
    canceller: object,
    mic: np.ndarray,
    reference: np.ndarray,
    tmp_path: Path,
    measure: bool = True,
    keep_cut: bool = True,
    keep_mic: bool = True,
    keep_refit: bool = True,
) -> list[SpeechEnded]:
    """What the listener hands the machine at the end of each stretch of speech."""
    events: list[object] = []
    listener = Listener(
        canceller,  # type: ignore[arg-type]
        SileroVad(),
        Endpointer(),
        PlaybackQueue(),
        SessionLog(tmp_path, record_wav=False),
        emit=events.append,
        muted=lambda: False,
        measure_echo_coherence=measure,
        keep_cut_copy=keep_cut,
        keep_mic_copy=keep_mic,
        keep_refit_copy=keep_refit,
    )
    for k in range(mic.size // FRAME_SAMPLES):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        listener.hear(DuplexFrame(mic[span], reference[span], k / 100, reference[span]))
    return [event for event in events if isinstance(event, SpeechEnded)]


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
@pytest.mark.parametrize("walk_s", [5.0, 8.0, 9.0])
def test_the_echo_silero_is_sure_of_after_a_walk_is_what_the_reply_explains(
    walk_s: float, tmp_path: Path
) -> None:
    """The default profile's canceller: its path watch holds most of a walk's echo down, but
    the first ~0.2-0.4 s after it reach VAD as speech silero is sure of (0.97 here), the blips
    bench_bargein's recogniser heard as "thank you". The listener measures each."""
    from tests.test_aec_drift import LEAD_S, drifting_room

    mic, reference = drifting_room(0.0, path_change_at_s=LEAD_S + walk_s)
    profile = DriftCompensated(speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True))
    heard = speech_heard(profile, mic, reference, tmp_path)
    sure = load_settings("default").turn.words_confidence
    after_the_walk = [e for e in heard if e.started_at >= LEAD_S + walk_s and e.peak_probability >= sure]
    assert after_the_walk
    assert all(e.echo_coherence is not None and e.echo_coherence >= THRESHOLD for e in after_the_walk)


def mic_with_a_user_over_the_reply() -> np.ndarray:
    """The user's "turn off the lights" over the reply, 7 s in."""
    from tests.test_aec_drift import LEAD_S, drifting_room

    mic, _ = drifting_room(0.0)
    user = at_voice_level(trim_silence(render("turn off the lights", "en-us+m3")))
    onset = int((LEAD_S + 7.0) * SAMPLE_RATE)
    mic = mic.copy()
    mic[onset : onset + user.size] += user
    return mic


def user_over_the_reply(
    tmp_path: Path, keep_cut: bool = True, keep_mic: bool = True, keep_refit: bool = True
) -> SpeechEnded:
    """That user, through the profile's canceller."""
    from tests.test_aec_drift import LEAD_S, drifting_room

    _, reference = drifting_room(0.0)
    profile = DriftCompensated(speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True))
    heard = speech_heard(
        profile,
        mic_with_a_user_over_the_reply(),
        reference,
        tmp_path,
        keep_cut=keep_cut,
        keep_mic=keep_mic,
        keep_refit=keep_refit,
    )
    (words,) = [e for e in heard if e.started_at >= LEAD_S + 2]
    return words


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_a_user_over_the_reply_is_not_what_the_reply_explains(tmp_path: Path) -> None:
    words = user_over_the_reply(tmp_path)
    assert words.echo_coherence is not None and words.echo_coherence < THRESHOLD
    # The reply plays on here (no machine pauses it): the mic is still mostly the reply (0.555,
    # where echo after a walk reads 0.5-0.8), and only the residual, the user's, keeps the rule
    # on both measures from taking them for the echo.
    assert words.mic_coherence is not None and words.mic_coherence > 0.5
    assert words.echo_coherence < PARTLY


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_speech_over_the_reply_comes_with_the_same_samples_as_the_canceller_cut_them(tmp_path: Path) -> None:
    """`turn.hear_cut_copy`'s second hearing: the recogniser's copy and the cut one, the same
    stretch (pre-roll and trailing silence included), the cut one late by the suppressor's FIR
    alone (2 ms: the recogniser's copy is not lagged, aec/speex.py), and with the echo's bands
    taken down."""
    words = user_over_the_reply(tmp_path)
    cut = words.cut_audio
    assert cut is not None and cut.size == words.audio.size
    lags = np.arange(-80, 81)
    similarity = [float(np.dot(np.roll(cut, lag), words.audio)) for lag in lags]
    assert lags[int(np.argmax(similarity))] == -ResidualSuppressor(FRAME_SAMPLES).half_taps
    assert float(np.dot(cut, cut)) < float(np.dot(words.audio, words.audio))
    # `turn.hear_cut_copy` off: nothing kept, nothing handed on.
    assert user_over_the_reply(tmp_path, keep_cut=False).cut_audio is None


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_speech_over_the_reply_comes_with_the_same_span_as_the_mic_took_it(tmp_path: Path) -> None:
    """`turn.hear_mic_copy`'s last hearing: the mic's own samples, echo and all, over the stretch
    VAD judged, though the drift-compensated canceller hands its output on late: where the cut
    copy has the user's voice, 2 ms after the recogniser's copy (as the cut copy is)."""
    words = user_over_the_reply(tmp_path)
    heard_by_the_mic = words.mic_audio
    assert heard_by_the_mic is not None and heard_by_the_mic.size == words.audio.size
    mic = mic_with_a_user_over_the_reply()
    size = heard_by_the_mic.size
    windows = np.lib.stride_tricks.sliding_window_view(mic, size)
    (start,) = np.flatnonzero((windows[:, :16] == heard_by_the_mic[:16]).all(axis=1))
    assert np.array_equal(mic[start : start + size], heard_by_the_mic)  # untouched by the canceller
    lags = np.arange(-80, 81)
    similarity = [float(np.dot(np.roll(heard_by_the_mic, lag), words.audio)) for lag in lags]
    assert lags[int(np.argmax(similarity))] == -ResidualSuppressor(FRAME_SAMPLES).half_taps
    assert float(np.dot(heard_by_the_mic, heard_by_the_mic)) > float(np.dot(words.audio, words.audio))
    # `turn.hear_mic_copy` off: nothing kept, nothing handed on.
    assert user_over_the_reply(tmp_path, keep_mic=False).mic_audio is None


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_speech_over_the_reply_comes_with_the_cancellers_frames_of_it_and_the_seconds_before(
    tmp_path: Path,
) -> None:
    """`turn.hear_refit_copy`'s hearing: the mic and the reference as the canceller took them
    over the stretch VAD judged, FIT_S of them before it in front; cancelled again, the user's
    voice where the recogniser's copy has it, and the reply's echo (6 dB over the user here)
    mostly gone."""
    words = user_over_the_reply(tmp_path)
    refit = words.refit_copy
    assert refit is not None and refit.fit_samples == int(FIT_S * SAMPLE_RATE)
    assert words.audio.size <= len(refit) < words.audio.size + FRAME_SAMPLES
    assert np.any(refit.reference[: refit.fit_samples])
    heard = refit.heard()
    assert heard.size == len(refit)
    lags = np.arange(-160, 161)
    span = words.audio.size
    similarity = [float(np.dot(np.roll(heard[:span], lag), words.audio)) for lag in lags]
    assert abs(lags[int(np.argmax(similarity))]) <= FRAME_SAMPLES
    assert words.mic_audio is not None
    assert float(np.dot(heard, heard)) < 0.5 * float(np.dot(words.mic_audio, words.mic_audio))
    # `turn.hear_refit_copy` off: nothing handed on.
    assert user_over_the_reply(tmp_path, keep_refit=False).refit_copy is None


def test_a_copy_kept_across_the_rings_end_comes_back_in_the_order_it_was_taken() -> None:
    """The cut and mic copies live in rings the listener writes every frame; a copy that
    started before the ring's end and finished after it is read back whole and in order."""
    ring, written = np.zeros(10, dtype=np.float32), 0
    for frame in np.arange(1, 16, dtype=np.float32).reshape(5, 3):  # 15 samples: wrapped once
        written = _write_ring(ring, written, frame)
    assert _read_ring(ring, written, 6, 2).tolist() == [8, 9, 10, 11, 12, 13]  # across the end
    assert _read_ring(ring, written, 3, 0).tolist() == [13, 14, 15]  # within it
    assert _read_ring(ring, written, 9, 2) is None  # older than the ring holds
    copy = _read_ring(ring, written, 3, 0)
    written = _write_ring(ring, written, np.zeros(3, dtype=np.float32))
    assert copy is not None and copy.tolist() == [13, 14, 15]  # a copy, not a view the ring rewrites


@pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")
def test_where_the_machine_never_asks_the_listener_does_not_measure(tmp_path: Path) -> None:
    """`turn.echo_coherence = 0`: the rule is off, and the 1-7 ms per speech are spared."""
    from tests.test_aec_drift import LEAD_S, drifting_room

    mic, reference = drifting_room(0.0, path_change_at_s=LEAD_S + 8.0)
    asked: list[tuple[int, int]] = []
    profile = DriftCompensated(speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True))
    measure = profile.echo_coherence
    profile.echo_coherence = lambda ago, frames: asked.append((ago, frames)) or measure(ago, frames)  # type: ignore[method-assign]
    heard = speech_heard(profile, mic, reference, tmp_path, measure=False)
    assert heard  # the walk's echo still reaches VAD as speech...
    assert all(event.echo_coherence is None for event in heard) and asked == []  # ...unmeasured
    (log,) = tmp_path.glob("*/session.jsonl")
    assert "echo_coherence" not in log.read_text()
