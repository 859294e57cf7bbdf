#!/usr/bin/env python
"""A long fault soak in the virtual room: every stage failing on purpose, nothing lost.

    .venv/bin/python scripts/soak.py [--turns 500] [--seed 1] [--speed 4] [--report soak.json] [--kiosk]

--kiosk: kiosk mode (loop.wake = "okay_nabu"): each request after the wake word, passers-by
talking while it sleeps; "passer_by_turns" (turns they started) must be empty.

Prints the report (JSON): {"turns", "completed", "faults": {KIND: n}, "crashes",
"lost_turns", "unspoken_in_history", "rss_growth_mb", "tasks_left", "fds_left", ...}.
Exit status 1 if anything that must be zero is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from voiceloop.testing.soak import run_soak


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=4.0, help="virtual-room speed (1 = real time)")
    parser.add_argument("--report", type=Path)
    parser.add_argument("--out", type=Path, help="keep the session log here (default: a temp dir)")
    parser.add_argument("--kiosk", action="store_true", help="wake word before each request, passers-by")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        report = asyncio.run(
            run_soak(
                args.turns,
                args.seed,
                out,
                args.speed,
                progress=lambda m: print(m, file=sys.stderr),
                kiosk=args.kiosk,
            )
        )
    data = report.as_json()
    text = json.dumps(data, indent=2, ensure_ascii=False)
    print(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    bad = data["crashes"] or data["lost_turns"] or data["unspoken_in_history"] or data.get("passer_by_turns")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
