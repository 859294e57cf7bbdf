"""The pipeline's one audio format, as plain numbers: 16 kHz mono in 10 ms frames.

Apart from `frames.py` (which needs numpy) so that a command's module can name the rate
without importing numpy: `voiceloop --help` must stay light.
"""

SAMPLE_RATE = 16_000
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
