"""tinyforum: keyframe animation with a tiny denoiser network."""

__version__ = "1.0.0"
