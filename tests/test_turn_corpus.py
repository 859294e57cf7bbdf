"""The turn-taking corpus and the room's ground truth (issue 14): lines with pauses inside,
lines spoken over a reply, the corpus files in voiceloop/configs/, and the true start and end of what
the scripted user said, written to the session log and checked against the recorded mic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.script import Pause, UserScript, load_script
from voiceloop.config.settings import CONFIGS_DIR, ConfigError

EN_CORPUS = CONFIGS_DIR / "turns-corpus.toml"
ZH_CORPUS = CONFIGS_DIR / "turns-corpus-zh.toml"
INCOMPLETE_ENDINGS = {"for", "to", "in", "at", "with", "about", "by", "the", "a", "and", "um", "so", "if"}
BACKCHANNELS = {"mhm", "yeah", "okay", "right", "uh-huh", "嗯", "对", "好的"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_line_holds_pauses_and_fillers_between_its_pieces(tmp_path):
    script = load_script(
        write(
            tmp_path,
            '[[turns]]\nsay = ["set a timer for", {pause_ms = 700}, "um", {pause_ms = 300}, "five minutes"]\n',
        )
    )
    turn = script.turns[0]
    assert turn.text_parts == (
        "set a timer for",
        Pause(pause_ms=700),
        "um",
        Pause(pause_ms=300),
        "five minutes",
    )
    assert turn.expected_text == "set a timer for um five minutes"
    assert turn.pause_count == 2 and turn.turn_kind == "paused"


def test_during_reply_is_the_interrupt_key_under_its_corpus_name(tmp_path):
    script = load_script(
        write(
            tmp_path,
            '[[turns]]\nsay = "hello"\n[[turns]]\nsay = "mhm"\nduring_reply_ms = 600\nkind = "backchannel"\n'
            '[[turns]]\nsay = "wait, stop"\nduring_reply_ms = 800\n[[turns]]\nsay = "no"\ninterrupt_after_ms = 500\n',
        )
    )
    hello, mhm, wait, no = script.turns
    assert hello.turn_kind == "complete" and hello.interrupt_after_ms is None
    assert (mhm.interrupt_after_ms, mhm.turn_kind) == (600, "backchannel")
    assert (wait.interrupt_after_ms, wait.turn_kind) == (800, "interruption")  # from its shape
    assert (no.interrupt_after_ms, no.turn_kind) == (500, "interruption")


@pytest.mark.parametrize(
    "line",
    [
        'say = "x"\nduring_reply_ms = 500\ninterrupt_after_ms = 500',  # one key, two names: not both
        "say = [{pause_ms = 500}]",  # a pause with nothing said
        'say = ["a", {pause_ms = 0}, "b"]',
        'say = "x"\nkind = "question"',
    ],
)
def test_a_malformed_line_is_refused(tmp_path, line):
    with pytest.raises(ConfigError):
        load_script(write(tmp_path, f"[[turns]]\n{line}\n"))


def test_the_english_corpus_has_every_kind_of_natural_turn():
    script = load_script(EN_CORPUS)
    by_kind: dict[str, list] = {}
    for turn in script.turns:
        by_kind.setdefault(turn.turn_kind, []).append(turn)
    assert len(script.turns) >= 40
    assert {k: len(v) >= 5 for k, v in by_kind.items()} == {
        "paused": True,
        "complete": True,
        "backchannel": True,
        "interruption": True,
    }
    pauses = []
    for turn in by_kind["paused"]:
        parts = turn.text_parts
        for before, part in zip(parts, parts[1:], strict=False):
            if isinstance(part, Pause):
                assert isinstance(before, str) and before.split()[-1].lower() in INCOMPLETE_ENDINGS, before
                pauses.append(part.pause_ms)
    assert min(pauses) == 300 and max(pauses) == 1500 and len(set(pauses)) >= 10
    assert all(t.pause_count == 0 and len(t.spoken_text.split()) <= 4 for t in by_kind["complete"])
    for turn in by_kind["backchannel"]:
        assert turn.spoken_text in BACKCHANNELS and turn.interrupt_after_ms is not None
    assert all(t.interrupt_after_ms is not None for t in by_kind["interruption"])
    said = {t.spoken_text for t in script.turns}
    assert {"wait, stop", "no, I meant Tuesday", "yes", "stop", "thanks"} <= said
    assert script.turns[0].interrupt_after_ms is None  # the first line has no reply to talk over


def test_the_mandarin_subset_is_in_espeaks_cmn_voice():
    script = load_script(ZH_CORPUS)
    assert script.voice == "cmn"
    kinds = {t.turn_kind for t in script.turns}
    assert kinds == {"paused", "complete", "backchannel", "interruption"}
    assert all(t.spoken_text in BACKCHANNELS for t in script.turns if t.turn_kind == "backchannel")
    assert script.turns[0].expected_text == "我想订一张去北京的火车票"  # pieces join with no space


@pytest.mark.parametrize("corpus", [EN_CORPUS, ZH_CORPUS], ids=["en", "zh"])
def test_every_corpus_line_renders_in_the_room_with_its_pauses(corpus):
    from voiceloop.audio.virtual import VirtualRoom
    from voiceloop.config.settings import RoomSettings

    script = load_script(corpus)
    room = VirtualRoom(script, RoomSettings())
    for turn, audio, pauses in zip(script.turns, room.user.lines, room.user.pauses, strict=True):
        assert audio.size > 0.15 * SAMPLE_RATE, turn.spoken_text
        assert len(pauses) == turn.pause_count
        wanted = [p.pause_ms / 1000 for p in turn.text_parts if isinstance(p, Pause)]
        for (start, end), seconds in zip(pauses, wanted, strict=True):
            assert end - start == pytest.approx(seconds, abs=1 / SAMPLE_RATE)
            silent = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            assert not np.any(silent)
            assert 0 < start and end < audio.size / SAMPLE_RATE


def _sound_edges(track: np.ndarray, threshold: float = 2e-3) -> np.ndarray:
    """Sample indices where the track is louder than the room's (near-silent) noise."""
    return np.flatnonzero(np.abs(track) > threshold)


@pytest.mark.slow
async def test_the_room_logs_each_lines_true_start_end_and_pauses_within_a_frame(tmp_path):
    """Ground truth checked against the recorded mic: in a room with no echo and almost no
    noise, the mic track is the user's voice alone, so where it is loud is where they spoke."""
    import soundfile as sf

    from voiceloop.build import build_adapter
    from voiceloop.config import load_settings
    from voiceloop.demo import run_demo
    from voiceloop.session.log import read_session

    settings = load_settings(
        "offline",
        loop={"greeting": ""},
        log={"dir": str(tmp_path / "runs")},
        audio={"room": {"echo_gain_db": -60, "noise_dbfs": -90, "speed": 2.0}},
    )
    user = UserScript.model_validate(
        {
            "tail_ms": 600,
            "turns": [
                {"say": ["turn on the", {"pause_ms": 600}, "lights"], "pause_ms": 300},
                {"say": "stop", "pause_ms": 300, "reply_timeout_ms": 1500},
            ],
        }
    )
    result = await run_demo(settings, user, say=lambda _: None, llm=build_adapter(settings, "llm", "echo"))

    log = read_session(result.session_dir / "session.jsonl")
    lines = [e for e in log if e["event"] == "user_utterance"]
    assert [(e["index"], e["kind"], e["text"], e["finished"]) for e in lines] == [
        (0, "paused", "turn on the lights", True),
        (1, "complete", "stop", True),
    ]
    assert len(lines[0]["pauses"]) == 1 and lines[1]["pauses"] == []
    assert all(e["t"] == e["end"] for e in lines)  # written as each line ended, on the loop clock
    pause_start, pause_end = lines[0]["pauses"][0]
    assert pause_end - pause_start == pytest.approx(0.6, abs=1e-3)

    origin = next(e["t"] for e in log if e["event"] == "virtual_room")  # where the WAV starts
    mic = sf.read(str(result.session_dir / "conversation.wav"), dtype="float32")[0][:, 0]

    def sample(t: float) -> int:
        return round((t - origin) * SAMPLE_RATE)

    for line in lines:
        start, end = sample(line["start"]), sample(line["end"])
        loud = _sound_edges(mic[max(0, start - 5 * FRAME_SAMPLES) : end + 5 * FRAME_SAMPLES])
        first = loud[0] + max(0, start - 5 * FRAME_SAMPLES)
        last = loud[-1] + max(0, start - 5 * FRAME_SAMPLES)
        assert abs(first - start) <= FRAME_SAMPLES, (line["text"], first, start)
        assert abs(last - (end - 1)) <= FRAME_SAMPLES, (line["text"], last, end)
    inner = mic[sample(pause_start) : sample(pause_end)]
    assert _sound_edges(inner).size == 0 or (
        _sound_edges(inner)[0] >= inner.size - FRAME_SAMPLES  # the next word within a frame
    )
    before = _sound_edges(mic[: sample(pause_start)])
    after = _sound_edges(mic[sample(pause_start) :])
    assert sample(pause_start) - before[-1] <= FRAME_SAMPLES
    assert abs(after[0] - (sample(pause_end) - sample(pause_start))) <= FRAME_SAMPLES


def _turn(turn_id: int, outcome: str, spoken: tuple[float, float], **at: float | None) -> dict:
    record = {"event": "turn", "turn_id": turn_id, "outcome": outcome, "endpoint_at": spoken[1] + 0.2}
    record |= {"speech_started_at": spoken[0], "vad_speech_end_at": spoken[1]}
    keys = ("reply_started_at", "playback_start_at", "playback_end_at", "barge_in_at")
    return record | {key: at.get(key) for key in keys}


def _line(index: int, kind: str, start: float, end: float, pauses=(), over_reply=False) -> dict:
    return {
        "event": "user_utterance",
        "index": index,
        "kind": kind,
        "text": kind,
        "start": start,
        "end": end,
        "pauses": [list(p) for p in pauses],
        "over_reply": over_reply,
        "is_speech": True,
    }


def test_the_turn_figures_count_cut_offs_from_the_ground_truth():
    from voiceloop.testing.turn_metrics import analyse

    log = [
        # A paused line cut at its pause: the first half answered aloud before the user went on.
        _line(0, "paused", 1.0, 3.0, [(1.8, 2.5)]),
        _turn(1, "interrupted", (1.02, 1.8), reply_started_at=2.1, playback_start_at=2.3, barge_in_at=2.7),
        _turn(2, "answered", (2.5, 3.0), reply_started_at=3.3, playback_start_at=3.5, playback_end_at=5.0),
        # A paused line cut, but merged before anything was heard: one message after all.
        _line(1, "paused", 6.0, 8.0, [(6.6, 7.4)]),
        _turn(3, "merged", (6.0, 6.6), reply_started_at=7.0, barge_in_at=7.45),
        _turn(4, "answered", (7.4, 8.0), reply_started_at=8.3, playback_start_at=8.45, playback_end_at=12.0),
        # "mhm" over that reply, which went on; then "wait, stop", which stopped the next one.
        _line(2, "backchannel", 9.0, 9.4, over_reply=True),
        _line(3, "complete", 13.0, 13.5),
        _turn(5, "interrupted", (13.0, 13.5), reply_started_at=13.7, playback_start_at=13.8, barge_in_at=14.3)
        | {"playback_end_at": 14.32},
        _line(4, "interruption", 14.0, 14.6, over_reply=True),
        {"event": "turn_detector", "t": 1.9, "detector_ms": 31.5},
    ]
    figures = analyse(log).summary()
    assert figures["premature_endpoints"] == 2 and figures["paused_lines_cut_pct"] == 100.0
    assert figures["replies_mid_utterance_pct"] == 50.0  # only the first line heard a reply mid-way
    assert figures["whole_as_one_message_pct"] == pytest.approx(66.7)  # the merged line and "complete"
    assert figures["backchannels_stopping_pct"] == 0.0 and figures["backchannels_over_reply"] == 1
    assert figures["interruptions_caught_pct"] == 100.0
    assert figures["reaction_ms"] == {"n": 1, "p50": 320.0, "p90": 320.0}
    assert figures["barge_in_decision_ms"] == {"n": 1, "p50": 300.0, "p90": 300.0}
    assert figures["complete_voice_to_voice_ms"] == {"n": 1, "p50": 300.0, "p90": 300.0}
    assert figures["detector_ms_per_call"]["p50"] == 31.5


def test_a_line_heard_from_a_late_onset_is_whole_while_the_preroll_still_holds_its_start():
    from voiceloop.testing.turn_metrics import analyse

    log = [
        _line(0, "complete", 1.0, 1.6),  # "stop": silero hears the unvoiced "s" 80 ms late
        _turn(1, "answered", (1.08, 1.6), reply_started_at=1.9, playback_start_at=2.0, playback_end_at=3.0),
        _line(1, "complete", 4.0, 5.0),  # its first 400 ms never reached the recogniser
        _turn(2, "answered", (4.4, 5.0), reply_started_at=5.3, playback_start_at=5.4, playback_end_at=6.0),
    ]
    assert analyse(log, preroll_s=0.3).summary()["whole_as_one_message_pct"] == 50.0
    assert analyse(log, preroll_s=0.0).summary()["whole_as_one_message_pct"] == 0.0
