"""python -m tinyforum --settings FILE --out DIR: render the frames and run.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tinyforum import __version__
from tinyforum.render import render
from tinyforum.settings import load_settings


def write_ppm(path, frame):
    """A binary PPM (P6) image of a (3, H, W) frame with values in [-1, 1]."""
    pixels = ((frame.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    height, width = pixels.shape[1:]
    header = f"P6\n{width} {height}\n255\n".encode("ascii")
    path.write_bytes(header + bytes(pixels.permute(1, 2, 0).flatten().tolist()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinyforum")
    parser.add_argument("--settings", type=Path, help="a JSON settings file")
    parser.add_argument("--out", type=Path, required=True, help="folder for the frames")
    args = parser.parse_args(argv)
    settings = load_settings(args.settings)
    args.out.mkdir(parents=True, exist_ok=True)
    stats = []
    for index, frame in render(settings):
        write_ppm(args.out / f"frame_{index:05d}.ppm", frame)
        stats.append(
            {
                "frame": index,
                "min": float(frame.min()),
                "max": float(frame.max()),
                "mean": float(frame.mean()),
                "std": float(frame.std()),
            }
        )
    metadata = {
        "app": "tinyforum",
        "version": __version__,
        "settings": settings,
        "frames": stats,
    }
    if settings["save_settings"]:
        text = json.dumps(settings, indent=2, sort_keys=True)
        (args.out / "settings.json").write_text(text + "\n", encoding="utf-8")
    text = json.dumps(metadata, indent=2, sort_keys=True)
    (args.out / "run.json").write_text(text + "\n", encoding="utf-8")
    print(f"tinyforum {__version__}: {len(stats)} frames in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
