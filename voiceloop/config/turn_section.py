"""`[turn]`: how a turn ends, which the engine decides with the detector the section names.

The detector (`name`, its options in `[turn.smart-turn]`) judges each VAD stop; the shared
keys are the engine's rules around it: the silence ceiling that ends a turn whatever the
detector says, the window in which speech after an endpoint is the same turn going on, the
words that make a "complete" verdict doubtful, and the words that are no interruption.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voiceloop.config.stage import StageSection

# A turn that ends on one of these is not over ("set a timer for", "I want the", "um").
INCOMPLETE_ENDINGS = [
    "a", "an", "the", "and", "or", "but", "so", "because", "to", "for", "of", "with", "in", "on",
    "at", "from", "by", "about", "into", "like", "than", "my", "your", "our", "their", "its",
    "if", "whether", "unless", "although", "um", "uh", "er", "erm",
    "的", "和", "跟", "那个", "就是", "然后", "还有", "因为", "所以",
]  # fmt: skip
BACKCHANNELS = [
    "mhm", "mm", "hmm", "mm-hmm", "uh-huh", "uh huh", "yeah", "yes", "yep", "yup", "okay", "ok", "right",
    "alright", "all right", "sure", "i see", "got it", "嗯", "嗯嗯", "对", "对对", "是", "是的", "好", "好的",
]  # fmt: skip


class TurnSettings(StageSection):
    kind: ClassVar[str] = "turn"

    name: str = Field(
        "none",
        description="smart-turn (the audio model, then the words) | words (the transcript alone) | "
        "none (the silence window alone)",
    )
    ceiling_ms: int = Field(
        2000, ge=200, le=10_000, description="silence that ends a turn whatever the detector says"
    )
    reask_ms: int = Field(
        500,
        ge=0,
        le=5000,
        description="after 'incomplete', ask again each time this much more silence passed",
    )
    detector_wait_ms: int = Field(
        80,
        ge=0,
        le=2000,
        description="words that sound complete wait this long for the detector's verdict, then end the turn",
    )
    doubt_ms: int = Field(
        800,
        ge=0,
        le=10_000,
        description="words that sound complete but judged 'incomplete' end the turn after this much silence",
    )
    merge_window_ms: int = Field(
        700, ge=0, le=5000, description="speech this soon after an endpoint continues that turn; 0 = off"
    )
    pause_on_speech: bool = Field(
        True, description="pause a reply while the user may be interrupting, resume after a backchannel"
    )
    # Off by default: it halves the reply's stutters on its own echo where the canceller
    # leaves some (clipping, a path that changes), and costs barge-ins over the loudest echo
    # (README, echo section: bench_bargein with and without it).
    hold_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="while a reply plays, only a VAD onset this sure pauses it at once (0 = any onset)",
    )
    hold_min_ms: int = Field(
        0,
        ge=0,
        le=3000,
        description="...a less sure one once this much of it is voiced (at most loop.barge_in_min_ms)",
    )
    # "Stop" said over a loud echo is voiced ~0.15-0.25 s once the suppressors have cut its
    # edges (0.11 s early in a drifting room's first reply): under a barge-in's minimum, so it
    # resumed the reply unheard (README, echo section).
    pause_words_min_ms: int = Field(
        80,
        ge=0,
        le=3000,
        description="speech over a paused reply this long is transcribed and its words decide "
        "(shorter resumes it at once; at most loop.barge_in_min_ms)",
    )
    # Silero is rarely sure of the echo the canceller leaves, and sure of a user talking over a
    # reply: bench_bargein's sessions replayed, its surest chunk was under 0.76 in half of 1,286
    # echo blips and 0.996 or more in 95 % of 748 users' words. Echo the recogniser heard as a
    # phrase (a false barge-in) peaked at 0.80-0.92; 7 users' words under 0.93 (README).
    words_confidence: float = Field(
        0.93,
        ge=0.0,
        le=1.0,
        description="speech over a playing reply whose VAD probability never reached this is taken "
        "for its own echo and resumes it unheard (0 = off)",
    )
    # A user's short "stop" over a reply the loop paused for may peak just under words_confidence
    # (the offline profile's room: 0.90-0.92 in 3 of 40 runs of test_soak's long reply, loaded),
    # while the reference explains little of it (0.14-0.18); the echo silero was unsure of that
    # the reference explains under 0.2 was 41 of 248 blips in bench_bargein's seeds 901-912
    # (README, "A user VAD was not quite sure of"). Such speech is not heard as the mic took it
    # (hear_mic_copy), and as the canceller cut it only where the reference explains less than
    # hear_mic_copy of the mic.
    unsure_coherence: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="with words_confidence: speech VAD was never that sure of is taken for the "
        "echo only where the reference explains this much of the canceller's residual (0 = "
        "whatever it explains)",
    )
    # The echo blips that floor sent to the recogniser and that it heard as words (a
    # self-transcription each: bench_bargein's walk rooms, seeds 913-960) peaked at 0.52-0.63;
    # the users it gave their words at 0.67-0.93, the soak's "stop" at 0.90-0.92 (README).
    unsure_confidence: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="with unsure_coherence: speech VAD was not even this sure of is the echo "
        "whatever the reference explains",
    )
    # After a path change silero is sure of the echo (the reply's voice, clear): held speech the
    # reference explains is the echo however sure it was. bench_bargein's speech over a reply,
    # measured (aec/coherence.py): users at most 0.26 (808), the echo silero was sure of 0.3 or
    # more in 33 of 43; later kept sessions, replayed: users to 0.296 (851), the echo 123 of 184
    # (README). No margin is left above: lowering it costs users.
    echo_coherence: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="speech over a playing reply of which the reference explains this much (the "
        "canceller's residual coherent with it) is taken for its own echo (0 = off)",
    )
    # A walk's echo the residual only partly explains (0.25-0.3) is still most of the mic, where a
    # user the loop paused the reply for is most of it: bench_bargein person-walks sessions
    # (seeds 128-205, 1,163 users), users whose residual read 0.25-0.3 at most 0.54 on the mic
    # (13), the echo under 0.3 0.6 or more in 412 of 1,300 (README, "A walk's echo half
    # explained"). Users reach 0.55-0.56 where the residual is theirs (0.22). Half, not 0.6:
    # over 546 later sessions the users there given their words read at most 0.46 on the mic,
    # and each self-transcription left in the bench read 0.51-0.57 ("The mic half explained").
    echo_coherence_with_mic: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="speech over a playing reply of which the reference explains this much of the "
        "canceller's residual (under echo_coherence) is taken for its own echo where it also "
        "explains mic_coherence of the mic itself (0 = off)",
    )
    mic_coherence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="with echo_coherence_with_mic: how much of the mic the reference must explain",
    )
    # Over a paused reply the mic holds what the loop paused for: a user's word is most of it, and
    # a walk's echo the residual explains under echo_coherence_with_mic is still the reply's voice.
    # bench_bargein person-walks (18,769 held speeches replayed, README "The mic mostly the
    # reply"): users given their words read at most 0.566 on the mic (4,508), the echo the
    # recogniser heard as a phrase 0.63-0.72, its residual 0.21-0.25; this rule's own bench, six
    # rooms, users at most 0.57.
    mic_coherence_alone: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="speech over a paused reply of which the reference explains this much of the "
        "mic itself is taken for its own echo, whatever the canceller's residual (0 = off)",
    )
    # After a walk the echo is the reply's voice, clear, and a recogniser that writes down what
    # it hears writes the reply's own words (engine/own_words.py; README, "The reply's own words").
    echo_words: bool = Field(
        True,
        description="held speech whose words are the ones the reply was sounding at that moment "
        "is taken for its own echo and resumes it (a user reading along with it is too)",
    )
    # After a walk the filter leaves echo 3-10 dB short of what it removed before, too little for
    # the path watch to act on: the recogniser's uncut copy of a "stop" said over it holds that
    # echo and is heard as nothing, while the per-band cut keeps the bands the user dominates
    # (README, "A second hearing, as the canceller cut it").
    hear_cut_copy: bool = Field(
        True,
        description="held speech over a reply that the recogniser hears as no words is heard "
        "again as the echo canceller cut it per band (one more recognition, only then)",
    )
    # Where both the canceller's copies of a "stop" said in the seconds after a walk are heard as
    # nothing, the adaptive filter has not yet learnt the new path, while the seconds of echo
    # before the "stop" show it plainly: a filter fitted to them at once cancels the mic's copy
    # again (aec/refit.py; README, "A third hearing, cancelled again").
    hear_refit_copy: bool = Field(
        True,
        description="held speech over a reply heard as no words in the canceller's copies (and "
        "that VAD was words_confidence sure of) is heard once more as the mic took it, less the "
        "echo a filter fitted to the 2 s before it explains (one more recognition and a ~20 ms "
        "fit in the recogniser's worker, only then); heard in place of hear_mic_copy's copy",
    )
    # Where both the canceller's copies of a "stop" said just after a walk are heard as nothing
    # (the filter has not yet been rebuilt, or is re-learning), the mic itself still holds it: the
    # reply paused within ~0.1 s of its onset, so the mic is mostly the user's voice. The mic of
    # an echo blip is mostly the reply's, and a recogniser held to phrases forces that into one
    # (README, "A third hearing, as the mic took it"). Heard only where there is no refit copy.
    hear_mic_copy: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="held speech over a reply heard as no words in the canceller's copies (and "
        "that VAD was words_confidence sure of) is heard once more as the mic took it, where there "
        "is no refit copy (hear_refit_copy) and the reference explains less than this of the mic; "
        "speech VAD was not that sure of is heard "
        "as the canceller cut it only there "
        "(echo_coherence_with_mic's measure; one more recognition, only then; 0 = off)",
    )
    backchannel_max_ms: int = Field(
        1000, ge=0, le=5000, description="speech over a paused reply longer than this stops it unheard"
    )
    use_transcript: bool = Field(
        True, description="a 'complete' verdict on words ending in `incomplete_endings` keeps listening"
    )
    incomplete_endings: list[str] = Field(default_factory=lambda: list(INCOMPLETE_ENDINGS))
    backchannels: list[str] = Field(default_factory=lambda: list(BACKCHANNELS))

    # The listener measures a held speech's coherence only for the rules that read it: the
    # measure costs a Welch pass over the speech, and the mic's a second one.
    @property
    def reads_mic_coherence(self) -> bool:
        """The pair rule, the mic rule and the mic hearing read how much of the mic the reference
        explains."""
        return self.echo_coherence_with_mic > 0 or self.mic_coherence_alone > 0 or self.hear_mic_copy > 0

    @property
    def reads_echo_coherence(self) -> bool:
        """How much of the canceller's residual the reference explains: the residual rule, the
        pair rule and the unsure rule's floor read it, and the canceller measures the mic's only
        in the same pass."""
        unsure_floor = self.words_confidence > 0 and self.unsure_coherence > 0
        return self.echo_coherence > 0 or unsure_floor or self.reads_mic_coherence
