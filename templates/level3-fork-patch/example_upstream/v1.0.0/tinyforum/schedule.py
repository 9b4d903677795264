"""Keyframe schedules: "0:(1.0), 30:(1.02)" gives a value for every frame."""

from __future__ import annotations

import re

_PAIR = re.compile(r"^\s*(\d+)\s*:\s*\((.*)\)\s*$")


def parse_schedule(text):
    """The keyframes of a schedule string, in frame order."""
    keyframes = []
    for part in text.split(","):
        frame, value = _PAIR.match(part).groups()
        keyframes.append((int(frame), float(value)))
    return sorted(keyframes)


def schedule_values(text, frames):
    """One value per frame: linear between keyframes, held outside them."""
    keyframes = parse_schedule(text)
    values = []
    for frame in range(frames):
        before = [pair for pair in keyframes if pair[0] <= frame]
        after = [pair for pair in keyframes if pair[0] > frame]
        if not before:
            values.append(keyframes[0][1])
        elif not after:
            values.append(before[-1][1])
        else:
            (start, low), (end, high) = before[-1], after[0]
            values.append(low + (high - low) * (frame - start) / (end - start))
    return values
