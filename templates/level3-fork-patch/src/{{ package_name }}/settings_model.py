"""The settings of the example upstream (tinyforum), as a typed schema.

Example content: drafted with `settings draft` from the upstream's defaults.json, then
narrowed by hand (choices, ranges, one-line descriptions). Replace it with your
upstream's (see the README). The patched app's defaults add `vignette_strength`.
tinyforum's schedule parser reads each value with float(), so its schedules are
NumberScheduleField: an expression such as `0:(t**2)` is refused here, not by a crash.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from .configfile import Settings
from .schedule import parse_schedule
from .settings import Migration, NumberScheduleField

SCHEMA_VERSION = 3

# How older settings files reach the current version, oldest first.
MIGRATIONS = (
    Migration(
        version=2,
        description="border_mode and cadence renamed; colour-match modes merged",
        renames={"border_mode": "border", "cadence": "diffusion_cadence"},
        remaps={
            "color_coherence": {
                "Match Frame 0 RGB": "Match Frame 0",
                "Match Frame 0 LAB": "Match Frame 0",
                False: "None",
            }
        },
    ),
    Migration(
        version=3,
        description="strength renamed strength_schedule; klms retired; 2 keys removed",
        renames={"strength": "strength_schedule"},
        remaps={"sampler": {"klms": "euler"}},
        removals=("save_samples", "show_progress"),
    ),
)


class UpstreamSettings(Settings):
    """Every key of tinyforum's defaults.json, plus what this fork's patches add."""

    model_config = ConfigDict(frozen=True, validate_default=True)

    schema_version: Literal[3] = Field(
        3, description="Version of this settings format."
    )
    W: int = Field(
        64, ge=8, le=1024, multiple_of=8, description="Frame width in pixels."
    )
    H: int = Field(
        64, ge=8, le=1024, multiple_of=8, description="Frame height in pixels."
    )
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="Seed of the weights and the noise."
    )
    seed_behavior: Literal["iter", "fixed"] = Field(
        "iter",
        description="iter: the noise seed grows by one each frame; fixed: it stays.",
    )
    max_frames: int = Field(
        3, ge=1, le=10_000, description="Number of frames to render."
    )
    fps: int = Field(
        12, ge=1, le=120, description="Frames per second of the animation."
    )
    animation_mode: Literal["2D", "None"] = Field(
        "2D", description="2D: move the camera by the schedules; None: still frames."
    )
    border: Literal["replicate", "wrap"] = Field(
        "replicate",
        description="How pixels moved in from outside the frame are filled.",
    )
    steps: int = Field(
        2, ge=1, le=100, description="Denoising steps per rendered frame."
    )
    sampler: Literal["euler", "heun"] = Field(
        "euler",
        description="heun averages two network evaluations a step: slower, smoother.",
    )
    model_channels: int = Field(
        8, ge=1, le=512, description="Width (feature maps) of the denoiser network."
    )
    model_depth: int = Field(
        2,
        ge=0,
        le=32,
        description="Residual convolution blocks in the denoiser network.",
    )
    embed_dim: int = Field(
        8,
        ge=1,
        le=1024,
        description="Size of each prompt token's learned embedding vector.",
    )
    prompts: dict[str, str] = Field(
        default_factory=lambda: {
            "0": "a tiny forest at dawn",
            "2": "a tiny forest at dusk",
        },
        description="Prompt per keyframe: frame number (as text) to prompt.",
    )
    negative_prompt: str = Field(
        "", description="What guidance steers away from (the unconditional prompt)."
    )
    cfg_scale_schedule: NumberScheduleField = Field(
        parse_schedule("0:(3.0)"),
        description="Classifier-free guidance scale: how hard the prompt steers.",
    )
    angle: NumberScheduleField = Field(
        parse_schedule("0:(0)"), description="Camera rotation per frame, in degrees."
    )
    zoom: NumberScheduleField = Field(
        parse_schedule("0:(1.04)"), description="Zoom factor per frame (1 = none)."
    )
    translation_x: NumberScheduleField = Field(
        parse_schedule("0:(0)"), description="Sideways shift per frame, pixels."
    )
    translation_y: NumberScheduleField = Field(
        parse_schedule("0:(0)"), description="Upward shift per frame, pixels."
    )
    noise_schedule: NumberScheduleField = Field(
        parse_schedule("0:(0.02)"),
        description="Amount of fresh Gaussian noise added before denoising.",
    )
    strength_schedule: NumberScheduleField = Field(
        parse_schedule("0:(0.65)"),
        description="How much of the previous frame survives (0 to 1).",
    )
    contrast_schedule: NumberScheduleField = Field(
        parse_schedule("0:(1.0)"),
        description="Contrast multiplier applied to each frame.",
    )
    diffusion_cadence: int = Field(
        1,
        ge=1,
        le=16,
        description="Denoise every n-th frame; frames between are only warped.",
    )
    color_coherence: Literal["None", "Match Frame 0"] = Field(
        "None",
        description="Match Frame 0: keep every frame's colours close to the first's.",
    )
    use_init: bool = Field(False, description="Start from init_image instead of noise.")
    init_image: str = Field(
        "", description="Path of the starting image when use_init is on."
    )
    batch_name: str = Field(
        "tinyforum", min_length=1, description="Name of the output batch."
    )
    output_format: Literal["ppm"] = Field(
        "ppm", description="Image format of the frames."
    )
    save_settings: bool = Field(
        True, description="Write the settings used next to the frames."
    )
    vignette_strength: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Darkening towards the corners (added by this fork).",
    )
