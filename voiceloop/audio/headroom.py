"""Playing no louder than the mic can take.

A speaker loud enough to drive the mic to full scale makes its own echo nonlinear, and no
linear canceller removes a clipped echo. In bench_bargein's mandarin-10db-drift80 (echo 10 dB
over the user at the mic) 30 % of the frames the greeting plays in reach full scale; speex
had removed only 4-7 dB of the first reply's echo a second into it, the per-band suppressor
then cut the user's "stop" with the echo, and silero never heard it: the first reply's
interruptions were 23 of the 53 the bench missed over seeds 11-36 (README, echo section).
Lifting speex's own saturation skip (the mic clamped under its 32000 test) taught the filter
faster but left the residual at the user's level, and the suppressors could not tell them
apart: no gain. Played 6 dB quieter, the echo does not clip (bench_bargein: README, echo
section).

The loop hears this itself: mic samples at full scale in frames where its own voice plays.
Where more than CLIPPED_SHARE of those frames clipped (two at least), it plays `step_db`
quieter, down to `min_volume_db`: judged half a second into each reply (the greeting is the
first) and again over the rest of it as it ends, so the greeting that clips goes on quieter
and the first reply, the one the user most often talks over while the canceller still
learns, does not clip. The new volume glides over one frame. It goes back up a step only
where three replies in a row show the room for it (QUIET_REPLIES): what clipped was then not
our echo (a knock on the mic), as an echo that clipped a step louder cannot leave that room.
Scaling what is played scales the canceller's reference with it, so the filter's taps stay
right across the change.

Frames are not asked whether the user spoke in them: the residual echo of a loud room is
speech to VAD too (in mandarin-10db-drift80 the endpointer was "in speech" for all but 16 of
the greeting's ~140 frames). A user who talks over a reply holds it within ~0.1 s, and a held
reply plays nothing, so their voice hardly counts; one who shouts through the greeting may
turn the speaker down a step, which three quiet replies give back.
"""

from __future__ import annotations

import numpy as np

CLIP_LEVEL = 0.99  # of full scale: a sample this loud was (or nearly was) clipped
CLIPPED_SHARE = 0.01  # of the frames a reply played in
MIN_FRAMES = 50  # frames played (0.5 s) before a reply's share counts
MIN_CLIPPED = 2  # frames: one alone is a plosive's peak, not a room
# Back up a step only after QUIET_REPLIES replies in a row whose loudest mic sample, a step
# louder, would still have stayed RAISE_MARGIN_DB under full scale: an echo that clipped at
# the louder volume peaks over that at this one, so a room that clips is never raised into
# clipping again, while a knock on the mic that lowered it is undone.
QUIET_REPLIES = 3
RAISE_MARGIN_DB = 3.0


class SpeakerHeadroom:
    """Fed every frame, it answers half a second into each reply whether the speaker should
    play quieter, and as the reply ends whether quieter or, with room, louder again.
    `volume_db` is the level in force (0 = as rendered)."""

    def __init__(self, step_db: float, min_volume_db: float) -> None:
        self.step_db = step_db
        self.min_volume_db = min_volume_db
        self.volume_db = 0.0
        self.clipped_share = 0.0  # of the last reply judged
        self._frames = 0
        self._clipped = 0
        self._judged = False  # this reply's first MIN_FRAMES were
        self._reply_frames = 0  # played in this reply, judged or not
        self._reply_loudest = 0.0  # the mic's loudest sample while this reply played
        self._quiet_replies = 0  # in a row, with room for a step up

    def hear(self, mic_frame: np.ndarray, playing: bool) -> float | None:
        """Counts a frame in which our voice played, and whether the mic clipped in it; the
        new volume in dB once a reply's first MIN_FRAMES clipped the mic, else None."""
        if not playing or not self.step_db:
            return None
        self._frames += 1
        self._reply_frames += 1
        loudest = max(float(mic_frame.max()), -float(mic_frame.min()))
        self._reply_loudest = max(self._reply_loudest, loudest)
        if loudest >= CLIP_LEVEL:
            self._clipped += 1
        if self._frames == MIN_FRAMES and not self._judged:
            self._judged = True
            return self._judge()
        return None

    def reply_played(self) -> float | None:
        """The new volume in dB as a reply ends: lower where what of it was not judged yet
        clipped the mic, a step higher after QUIET_REPLIES with room for it, else None."""
        volume = self._judge()
        frames, loudest = self._reply_frames, self._reply_loudest
        self._judged, self._reply_frames, self._reply_loudest = False, 0, 0.0
        if volume is not None or self.volume_db >= 0.0 or frames < MIN_FRAMES:
            return volume
        room = 10 ** (-(self.step_db + RAISE_MARGIN_DB) / 20)
        self._quiet_replies = self._quiet_replies + 1 if loudest < room else 0
        if self._quiet_replies < QUIET_REPLIES:
            return None
        self._quiet_replies = 0
        self.volume_db = min(self.volume_db + self.step_db, 0.0)
        return self.volume_db

    def _judge(self) -> float | None:
        frames, clipped = self._frames, self._clipped
        self._frames = self._clipped = 0
        if frames < MIN_FRAMES:
            return None
        self.clipped_share = clipped / frames
        lowered = max(self.volume_db - self.step_db, self.min_volume_db)
        if clipped < MIN_CLIPPED or self.clipped_share <= CLIPPED_SHARE or lowered >= self.volume_db:
            return None
        self.volume_db = lowered
        self._quiet_replies = 0
        return lowered
