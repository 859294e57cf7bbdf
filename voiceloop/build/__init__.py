"""Builds adapters and their combinations from settings: the one place that knows them all.

- `adapters.build_adapter`: any adapter by kind and name, through its registry spec, given its
  own options (`[asr.paraformer]`) and its stage's shared section (`[asr]`).
- `voices.build_voice`: the configured voice with `tts.fallback` behind it (around any voice).
- `llm.choose_llm`: the configured LLM backends, with the demo's echo stand-in where allowed.
- `pipeline.build_pipeline`: every stage of one conversation.

Callers say what differs (a voice asked for, a recogniser chosen by a flag) as arguments
here or as overrides to `load_settings`; nothing changes settings after loading to steer this.
"""

from voiceloop.build.adapters import build_adapter
from voiceloop.build.pipeline import build_pipeline
from voiceloop.build.voices import build_voice

__all__ = ["build_adapter", "build_pipeline", "build_voice"]
