#!/usr/bin/env python3
"""Print a short table of records read from stdin (used by `make demo`).

    extract examples/audio/* | python examples/summarize.py
"""

import os
import sys

from mirkit.records import get_path, record_id
from mirkit.streams import read_records


def fmt(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def main():
    rows = []
    for rec in read_records(sys.stdin.buffer, "-"):
        if not isinstance(rec, dict):
            continue
        name = os.path.basename(record_id(rec) or "?")
        key = get_path(rec, "tonal.key_edma.key", None)
        scale = get_path(rec, "tonal.key_edma.scale", None)
        parts = [
            name[:40].ljust(40),
            fmt(get_path(rec, "metadata.audio_properties.length", None), "6.1f") + " s",
            fmt(get_path(rec, "rhythm.bpm", None), "6.1f") + " bpm",
            f"{key or '-'} {scale or ''}".ljust(9),
            fmt(get_path(rec, "lowlevel.loudness_ebu128.integrated", None), "6.1f") + " LUFS",
        ]
        for model, out in sorted((get_path(rec, "highlevel", {}) or {}).items()):
            if isinstance(out, dict) and "all" in out:
                top = sorted(out["all"].items(), key=lambda kv: -kv[1])[:3]
                parts.append(f"{model}: " + ", ".join(f"{c} {p:.2f}" for c, p in top))
        rows.append("  ".join(parts))
    print("\n".join(rows) if rows else "(no records)")


if __name__ == "__main__":
    main()
