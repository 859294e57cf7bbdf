"""The whole loop in the virtual room, in real time, with real parts: espeak voices the user,
the assistant's voice echoes back into the mic, silero-vad and pocketsphinx listen, the real
`openai` client streams from a local OpenAI-compatible server, and espeak answers."""

from __future__ import annotations

import pytest

from tests.conftest import script
from voiceloop.build import build_adapter
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.faults import FaultyVoice
from voiceloop.testing.llm_server import Fault, LlmServer, unused_port

pytestmark = pytest.mark.slow


def spoken_turns(log: list[dict]) -> list[dict]:
    return [line for line in log if line["event"] == "turn"]


async def test_a_conversation_is_heard_answered_and_logged(room_settings, llm_server: LlmServer):
    user = script(
        {"say": "what time is it", "pause_ms": 300},
        {"say": "tell me a joke"},
        {"say": "turn on the lights"},
    )
    result = await run_demo(room_settings, user, say=lambda _: None)
    report = result.report

    assert [t["transcript"] for t in report["turns"]] == [
        "what time is it",
        "tell me a joke",
        "turn on the lights",
    ]
    for entry in report["turns"]:
        assert entry["reply"].startswith(f"Sure thing, you asked me: {entry['expected']}.")
        assert entry["timings_ms"]["voice_to_voice"] > 0
    assert report["self_transcriptions"] == 0 and report["barge_ins"] == 0 and report["errors"] == []

    # The server saw the conversation grow: history carries what was said and heard.
    last = llm_server.last_request.messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == "what time is it"

    log = read_session(result.session_dir / "session.jsonl")
    turns = spoken_turns(log)
    assert [t["transcript"] for t in turns] == ["what time is it", "tell me a joke", "turn on the lights"]
    assert all(t["outcome"] == "answered" for t in turns)
    assert (result.session_dir / "conversation.wav").stat().st_size > 16_000 * 2 * 2 * 5


async def test_talking_over_a_reply_stops_it_and_only_the_heard_part_enters_history(
    room_settings, llm_server
):
    user = script(
        {"say": "tell me a joke", "pause_ms": 300},
        {"say": "never mind", "interrupt_after_ms": 900},
        {"say": "thank you", "pause_ms": 600},
    )
    result = await run_demo(room_settings, user, say=lambda _: None)
    report = result.report

    assert [t["transcript"] for t in report["turns"]] == ["tell me a joke", "never mind", "thank you"]
    interrupted = report["turns"][0]
    assert interrupted["interrupted"] and report["barge_ins"] == 1
    full_reply = (
        "Sure thing, you asked me: tell me a joke. Here is a second sentence that takes a while to say."
    )
    assert interrupted["reply"] and full_reply.startswith(interrupted["reply"].rstrip("."))
    assert interrupted["reply"] != full_reply

    # What the LLM is told it said is what the user heard, not what it wrote.
    history = llm_server.last_request.messages
    assert history[2] == {"role": "assistant", "content": interrupted["reply"]}
    assert report["self_transcriptions"] == 0

    turns = spoken_turns(read_session(result.session_dir / "session.jsonl"))
    assert turns[0]["outcome"] == "interrupted" and turns[0]["barge_in_at"] is not None
    # The barge-in stopped playback within a frame or two of being decided.
    assert turns[0]["playback_end_at"] - turns[0]["barge_in_at"] < 0.05


async def test_llm_faults_are_spoken_and_the_next_turn_still_works(room_settings, llm_server: LlmServer):
    # Three 500s outlast the two retries; then a reply cut after 8 tokens; then all is well.
    llm_server.fail_next(Fault(status=500), Fault(status=500), Fault(status=500), Fault(cut_after_tokens=8))
    user = script(
        {"say": "what time is it", "pause_ms": 300},
        {"say": "tell me a joke"},
        {"say": "turn on the lights"},
    )
    result = await run_demo(room_settings, user, say=lambda _: None)
    turns = spoken_turns(read_session(result.session_dir / "session.jsonl"))

    assert [t["transcript"] for t in turns] == ["what time is it", "tell me a joke", "turn on the lights"]
    assert [t["outcome"] for t in turns] == ["error", "error", "answered"]
    assert "500" in turns[0]["errors"][0]
    assert turns[0]["heard_text"] == ""  # only the spoken apology: nothing for the history
    assert "cut off" in turns[1]["errors"][0]
    assert turns[1]["heard_text"].startswith("Sure thing")  # what did arrive was spoken
    # The failed turn left no trace in history, the cut one only what was heard.
    history = llm_server.last_request.messages
    assert [m["content"] for m in history if m["role"] == "user"] == ["tell me a joke", "turn on the lights"]
    assert history[2]["content"] == turns[1]["heard_text"]


async def test_an_unreachable_endpoint_is_said_plainly_and_every_turn_is_logged(room_settings):
    room_settings.llm.base_url = f"http://127.0.0.1:{unused_port()}/v1"
    user = script({"say": "hello there", "pause_ms": 300}, {"say": "what time is it"})
    notes: list[str] = []
    result = await run_demo(room_settings, user, say=notes.append)
    assert any("not answering" in note for note in notes)
    turns = spoken_turns(read_session(result.session_dir / "session.jsonl"))
    assert [t["transcript"] for t in turns] == ["hello there", "what time is it"]
    assert all(t["outcome"] == "error" and "cannot reach" in t["errors"][0] for t in turns)
    assert all(t["playback_start_at"] is not None for t in turns)  # the apology was spoken


async def test_a_voice_failure_is_reported_and_the_loop_carries_on(room_settings, llm_server):
    # Call 0 is the greeting; call 1 is the first piece of the first reply.
    voice = FaultyVoice(build_adapter(room_settings, "tts", "espeak"), {1: "error"})
    user = script(
        {"say": "what time is it", "pause_ms": 300}, {"say": "tell me a joke", "reply_timeout_ms": 3000}
    )
    result = await run_demo(room_settings, user, say=lambda _: None, tts=voice)
    turns = spoken_turns(read_session(result.session_dir / "session.jsonl"))
    assert [t["outcome"] for t in turns] == ["error", "answered"]
    assert "injected voice failure" in turns[0]["errors"][0]
    assert turns[1]["heard_text"].startswith("Sure thing, you asked me: tell me a joke.")
