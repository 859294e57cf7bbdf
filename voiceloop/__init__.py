"""voiceloop: a listening, echo-cancelling, interruptible voice-assistant loop.

Nothing heavy is imported here: `voiceloop --help` must answer in well under a second, so
torch, FunASR, onnxruntime and friends load only inside the adapters that need them.
"""

__version__ = "0.1.0"
