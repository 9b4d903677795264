"""Read a PCM WAV file and find where speech is, by frame energy (stdlib only)."""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array
from dataclasses import dataclass

FRAME_SECONDS = 0.03
# A frame is speech when its RMS is above this fraction of the loudest frame's RMS...
RELATIVE_THRESHOLD = 0.1
# ...and above this absolute RMS (full scale: 32768), so near-silence never counts.
ABSOLUTE_THRESHOLD = 200
# Pauses shorter than this stay inside one segment (gaps between words).
MIN_PAUSE_SECONDS = 0.3
# Bursts shorter than this are clicks, not speech.
MIN_SPEECH_SECONDS = 0.1
PADDING_SECONDS = 0.05


class AudioFormatError(ValueError):
    """The bytes are not audio this module can read (a 16-bit PCM WAV file)."""


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit samples and their rate."""

    samples: array[int]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def read_wav(data: bytes) -> Audio:
    """Decode a 16-bit PCM WAV file (any rate, any channel count) to mono samples."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, RuntimeError) as error:
        # The wave module raises RuntimeError, too, for some corrupt chunk sizes.
        reason = str(error) or "corrupt chunks"
        raise AudioFormatError(f"not a readable WAV file ({reason})") from None
    if channels < 1 or rate < 1:
        raise AudioFormatError(f"a WAV header with {channels} channels at {rate} Hz")
    if width != 2:
        raise AudioFormatError(f"expected 16-bit PCM WAV, got {8 * width}-bit samples")
    frames = frames[: len(frames) - len(frames) % (width * channels)]  # a cut-off file
    samples = array("h", frames)
    if sys.byteorder == "big":  # WAV stores samples little-endian
        samples.byteswap()
    if channels > 1:
        samples = array(
            "h",
            (
                sum(samples[i : i + channels]) // channels
                for i in range(0, len(samples), channels)
            ),
        )
    return Audio(samples=samples, sample_rate=rate)


def frame_energies(audio: Audio) -> list[float]:
    """Root-mean-square amplitude of each FRAME_SECONDS-long frame."""
    size = max(1, round(audio.sample_rate * FRAME_SECONDS))
    energies = []
    for start in range(0, len(audio.samples), size):
        frame = audio.samples[start : start + size]
        energies.append(math.sqrt(sum(s * s for s in frame) / len(frame)))
    return energies


def speech_threshold(energies: list[float]) -> float:
    """The RMS above which a frame counts as speech."""
    return max(ABSOLUTE_THRESHOLD, RELATIVE_THRESHOLD * max(energies, default=0.0))


def speech_segments(audio: Audio) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of speech, in order."""
    energies = frame_energies(audio)
    if not energies:
        return []
    threshold = speech_threshold(energies)
    frame = FRAME_SECONDS
    runs: list[list[float]] = []
    for index, energy in enumerate(energies):
        if energy < threshold:
            continue
        start, end = index * frame, (index + 1) * frame
        if runs and start - runs[-1][1] < MIN_PAUSE_SECONDS:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [
        (
            round(max(0.0, start - PADDING_SECONDS), 2),
            round(min(audio.duration, end + PADDING_SECONDS), 2),
        )
        for start, end in runs
        if end - start >= MIN_SPEECH_SECONDS
    ]


def quiet_share(energies: list[float], start: float, end: float) -> float:
    """The share of the frames from `start` to `end` seconds that are not speech."""
    first = int(start / FRAME_SECONDS)
    frames = energies[first : max(first + 1, math.ceil(end / FRAME_SECONDS))]
    if not frames:
        return 1.0
    threshold = speech_threshold(energies)
    return sum(energy < threshold for energy in frames) / len(frames)
