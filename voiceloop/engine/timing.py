"""Per-turn measurement points (DESIGN.md) and the latencies derived from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The latencies a turn is summed up by (reports, the demo's table, the run's live line).
SUMMARY_TIMINGS: tuple[str, ...] = ("voice_to_voice", "endpoint", "asr", "llm_ttft", "tts_first_audio")


def format_ms(value: float | None) -> str:
    """A latency for a table cell: whole milliseconds, or a dash where there is none."""
    return "–" if value is None else f"{value:.0f}"


@dataclass
class TurnRecord:
    turn_id: int
    speech_started_at: float
    speech_end_at: float  # the true end where the device knows it, else VAD's estimate
    vad_speech_end_at: float
    endpoint_at: float
    speech_end_is_true: bool = False
    speculative: bool = False  # transcription started in the pause before the endpoint
    # What ended the turn: the VAD's silence window (no detector, or it failed), the detector's
    # "complete" verdict, or the silence ceiling over "incomplete" verdicts.
    endpoint_by: str = "silence"
    # Every VAD stop the detector judged in this turn: probability, verdict, its ms, when.
    verdicts: list[dict[str, float | bool | str | None]] = field(default_factory=list)
    turn_probability: float | None = None  # the last verdict's, the one the endpoint followed
    turn_decision_ms: float | None = None  # ...and the detector's time for it
    merged_from: list[int] = field(default_factory=list)  # earlier turns this one continues
    playback_pauses: int = 0  # times the reply was held for speech over it
    playback_resumes: int = 0  # ...and played on after (a backchannel, a noise)
    paused_at: float | None = None  # when the reply last went quiet for speech over it
    hold_starts: list[float] = field(default_factory=list)  # when each of those holds began
    audio_s: float = 0.0
    asr_done_at: float | None = None
    asr_elapsed_s: float | None = None
    transcript: str = ""
    user_text: str = ""  # what was sent to the LLM (may include merged earlier words)
    reply_started_at: float | None = None
    llm_first_token_at: float | None = None
    llm_done_at: float | None = None
    llm_deltas: int = 0
    first_sentence_at: float | None = None
    tts_first_audio_at: float | None = None
    playback_start_at: float | None = None
    playback_end_at: float | None = None
    barge_in_at: float | None = None
    reply_text: str = ""  # everything the LLM produced for this turn
    heard_text: str = ""  # what was actually played: the only part kept in history
    backend: str = ""
    outcome: str = ""
    errors: list[str] = field(default_factory=list)

    def timings_ms(self) -> dict[str, float | None]:
        def span(start: float | None, end: float | None) -> float | None:
            return None if start is None or end is None else round((end - start) * 1000, 1)

        asr_wait = span(self.endpoint_at, self.asr_done_at)
        return {
            "voice_to_voice": span(self.speech_end_at, self.playback_start_at),
            "endpoint": span(self.speech_end_at, self.endpoint_at),
            # From the endpoint until the transcript was there: 0 when an early (speculative)
            # transcription finished inside the stop window.
            "asr": None if asr_wait is None else max(asr_wait, 0.0),
            "asr_compute": None if self.asr_elapsed_s is None else round(self.asr_elapsed_s * 1000, 1),
            "llm_ttft": span(self.reply_started_at, self.llm_first_token_at),
            "llm_first_piece": span(self.reply_started_at, self.first_sentence_at),
            "tts_first_audio": span(self.first_sentence_at, self.tts_first_audio_at),
            "queue_to_play": span(self.tts_first_audio_at, self.playback_start_at),
            "llm_total": span(self.reply_started_at, self.llm_done_at),
        }

    @property
    def tokens_per_s(self) -> float | None:
        """Streamed deltas per second after the first (servers send about one token each)."""
        if self.llm_first_token_at is None or self.llm_done_at is None or self.llm_deltas < 2:
            return None
        streaming = self.llm_done_at - self.llm_first_token_at
        return round((self.llm_deltas - 1) / streaming, 1) if streaming > 0 else None

    def overhead_ms(self, stop_window_ms: float) -> float | None:
        """Voice-to-voice time not spent in the silence window or in stage work: the loop's
        own cost (VAD quantisation and lag, scheduling, queueing, frame alignment)."""
        t = self.timings_ms()
        v2v, asr, first_piece, tts = t["voice_to_voice"], t["asr"], t["llm_first_piece"], t["tts_first_audio"]
        if v2v is None or asr is None or first_piece is None or tts is None:
            return None
        return round(v2v - (stop_window_ms + asr + first_piece + tts), 1)

    def as_log(self, t0: float) -> dict[str, object]:
        """JSON-ready, with absolute times made relative to the session start."""
        data = asdict(self)
        for key, value in data.items():
            if key.endswith("_at") and isinstance(value, float):
                data[key] = round(value - t0, 4)
        data["timings_ms"] = self.timings_ms()
        data["tokens_per_s"] = self.tokens_per_s
        return data
