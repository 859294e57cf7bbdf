#!/usr/bin/env python
"""`voiceloop bench` against two local OpenAI-compatible servers of different speed.

Reproduces the comparison without any real model: a "fast" server (first token after 20 ms,
5 ms per token) and a "slow" one (400 ms, 30 ms per token), both streaming real SSE to the
real `openai` client, asked the bench script by voice in the virtual room.

    .venv/bin/python scripts/bench_llm_local.py [--repeat 1] [--report bench-local.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from voiceloop.config.settings import CONFIGS_DIR
from voiceloop.testing.llm_server import LlmServer


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--report", default="bench-local.json")
    args = parser.parse_args()
    with (
        LlmServer(first_token_delay_s=0.02, token_interval_s=0.005) as fast,
        LlmServer(first_token_delay_s=0.4, token_interval_s=0.03) as slow,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = Path(tmp) / "two-backends.toml"
        config.write_text(
            (CONFIGS_DIR / "offline.toml").read_text()
            + f'\n[llm.backends.fast]\nbase_url = "{fast.base_url}"\nmodel = "fast-model"\n'
            + f'\n[llm.backends.slow]\nbase_url = "{slow.base_url}"\nmodel = "slow-model"\n'
        )
        command = [
            sys.executable, "-m", "voiceloop", "bench", "--backends", "fast,slow",
            "-c", str(config), "--report", args.report, "--repeat", str(args.repeat),
        ]  # fmt: skip
        return subprocess.run(command, env={**os.environ, "COLUMNS": "120"}).returncode


if __name__ == "__main__":
    sys.exit(main())
