"""The demo report's echo holds: a reply held for speech while the user made no sound."""

from voiceloop.demo import echo_holds
from voiceloop.engine.timing import TurnRecord


def a_reply_held_at(*holds: float) -> TurnRecord:
    return TurnRecord(
        turn_id=1,
        speech_started_at=0.0,
        speech_end_at=0.5,
        vad_speech_end_at=0.5,
        endpoint_at=0.7,
        hold_starts=list(holds),
    )


def test_a_hold_while_the_user_makes_a_sound_is_theirs_and_one_in_their_silence_is_our_echo():
    user_sounds = [(2.0, 2.4), (6.0, 6.1)]  # "stop", then a cough
    reply = a_reply_held_at(2.15, 4.0, 6.55, 6.7)
    # 2.15 s: VAD heard "stop"; 6.55 s: the cough, 0.45 s after it ended (VAD's start and a
    # chunk); 4.0 s and 6.7 s: nothing the user did.
    assert echo_holds([reply], user_sounds) == [4.0, 6.7]


def test_a_hold_is_never_explained_by_a_sound_that_came_after_it():
    assert echo_holds([a_reply_held_at(1.9)], [(2.0, 2.4)]) == [1.9]
