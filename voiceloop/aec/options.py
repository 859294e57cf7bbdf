"""Each canceller's own options: `[aec.speex]`, `[aec.webrtc]`.

Only pydantic here (the settings model imports it). `delay_ms` stays in `[aec]`: it is the
device's delay, which the audio backend aligns the reference by, whatever the canceller.
"""

from __future__ import annotations

from pydantic import Field

from voiceloop.adapter_options import AdapterOptions


class SpeexOptions(AdapterOptions):
    # 256 ms covers the reverberant tail of living rooms (RT60 0.45-0.6 s): with 128 ms the
    # unmodelled tail at the end of each reply was loud enough to sound like a barge-in.
    filter_ms: int = Field(256, ge=16, le=1000)
    # The linear filter alone leaves echo that VAD still hears, so a suppressor follows it;
    # these cap its attenuation (dB). Noise and residual echo share one gain floor: 0 dB of
    # noise suppression also weakens echo suppression (see voiceloop/aec/speex.py).
    echo_suppress_db: int = Field(-40, ge=-90, le=0, description="residual echo, user silent")
    echo_suppress_active_db: int = Field(-15, ge=-90, le=0, description="residual echo in double talk")
    noise_suppress_db: int = Field(-25, ge=-90, le=0)
    # Resample the reference onto the mic's clock (voiceloop/aec/drift.py): separate speaker
    # and mic crystals 20-120 ppm apart otherwise let the echo slide past the filter.
    drift_compensation: bool = False
    # Notice an echo path change (someone walks between speaker and mic: the residual grows
    # and still correlates with the reference), rebuild the filter and hold the residual down
    # while it re-learns, or take back the filter from before the last change where the path
    # went back to it (whoever walked in walked out) (voiceloop/aec/path_watch.py).
    path_change_recovery: bool = False
    # Cut residual echo per band (voiceloop/aec/residual.py) rather than the whole output, so
    # a user talking over a loud reply keeps the bands their voice dominates. The cut output is
    # what VAD and barge-in judge; the recogniser hears the output without it (its cut cost
    # pocketsphinx tests/test_soak.py's "stop": see SpeexCanceller.recognition_frame). On in
    # both profiles.
    residual_suppression: bool = False
    # Once the first reply a filter hears ends (the greeting; the first after a path change
    # rebuilt it), feed its frames through the filter this many times more
    # (voiceloop/aec/relearn.py): the next reply starts better cancelled. On (2) in both profiles.
    relearn_passes: int = Field(0, ge=0, le=8)
    # While a filter rebuilt after a walk re-learns (~1.5 s), the speaker plays this much quieter
    # (dB; 0 = as loud), and the path watch then lets through a residual the reference explains
    # little of: a user talking over it is otherwise held down with the echo (path_watch.py).
    # -10 in the default profile. Alone it bought users after a walk with more echo holds in
    # the replies after it; with relearn_replay_every it costs none (README, "The speaker
    # quieter while the filter re-learns").
    relearn_duck_db: float = Field(0.0, ge=-30.0, le=0.0)
    # While a filter rebuilt after a walk re-learns, feed the last 0.4 s through it again every
    # this many frames (0 = never): it learns the changed room in fewer live frames, so a user
    # talking meanwhile is sooner told from the echo (SpeexCanceller.relearn_replay_every).
    # 5 in the default profile (the offline one watches no path).
    relearn_replay_every: int = Field(0, ge=0, le=100)


class WebRtcOptions(AdapterOptions):
    # AEC3 suppresses residual echo without help; noise suppression cleans the user's voice for
    # VAD and ASR at the cost of 6 ms more output delay. (No high-pass switch: with echo
    # cancellation on, WebRTC runs its high-pass filter whatever it is told.)
    noise_suppression: bool = True
