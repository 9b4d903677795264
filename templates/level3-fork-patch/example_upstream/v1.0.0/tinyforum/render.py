"""The render loop: warp the last frame, add noise, denoise, adjust, repeat."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from tinyforum.model import build_model, tokenize
from tinyforum.schedule import schedule_values

SCHEDULES = (
    "angle",
    "zoom",
    "translation_x",
    "translation_y",
    "noise_schedule",
    "strength_schedule",
    "contrast_schedule",
    "cfg_scale_schedule",
)


def prompt_for(prompts, frame):
    """The prompt of the last keyframe at or before `frame`."""
    keys = sorted(int(key) for key in prompts)
    chosen = [key for key in keys if key <= frame] or keys[:1]
    return prompts[str(chosen[-1])]


def warp(image, angle, zoom, shift_x, shift_y, border):
    """Rotate by `angle` degrees, zoom, and shift by pixels, like deforum's 2D mode."""
    _, _, height, width = image.shape
    radians = math.radians(angle)
    cos, sin = math.cos(radians) / zoom, math.sin(radians) / zoom
    theta = torch.tensor(
        [[cos, -sin, -2.0 * shift_x / width], [sin, cos, -2.0 * shift_y / height]]
    )
    grid = F.affine_grid(theta[None], list(image.shape), align_corners=False)
    padding = "border" if border == "replicate" else "reflection"
    return F.grid_sample(image, grid, padding_mode=padding, align_corners=False)


def denoise(model, image, cond, uncond, cfg_scale, sampler):
    """One denoising step with classifier-free guidance."""

    def guided(x):
        plain = model(x, uncond)
        return plain + cfg_scale / 10.0 * (model(x, cond) - plain)

    estimate = guided(image)
    if sampler == "heun":
        estimate = 0.5 * (estimate + guided(estimate))
    return estimate


def match_colors(frame, reference):
    """Give `frame` the per-channel mean and spread of `reference`."""
    mean, std = (
        frame.mean(dim=(2, 3), keepdim=True),
        frame.std(dim=(2, 3), keepdim=True),
    )
    target_mean = reference.mean(dim=(2, 3), keepdim=True)
    target_std = reference.std(dim=(2, 3), keepdim=True)
    return (frame - mean) / (std + 1e-6) * target_std + target_mean


def render(settings):
    """Yield (index, frame) for each frame: (3, H, W), values in [-1, 1]."""
    frames = settings["max_frames"]
    values = {name: schedule_values(settings[name], frames) for name in SCHEDULES}
    model = build_model(settings)
    uncond = tokenize(settings["negative_prompt"])
    generator = torch.Generator().manual_seed(settings["seed"])
    frame = torch.rand(1, 3, settings["H"], settings["W"], generator=generator) * 2 - 1
    first = None
    with torch.no_grad():
        for index in range(frames):
            if index > 0 and settings["animation_mode"] == "2D":
                frame = warp(
                    frame,
                    values["angle"][index],
                    values["zoom"][index],
                    values["translation_x"][index],
                    values["translation_y"][index],
                    settings["border"],
                )
            if index % settings["diffusion_cadence"] == 0:
                if settings["seed_behavior"] == "iter":
                    generator.manual_seed(settings["seed"] + index)
                noise = torch.randn(frame.shape, generator=generator)
                noisy = frame + values["noise_schedule"][index] * noise
                cond = tokenize(prompt_for(settings["prompts"], index))
                cfg_scale = values["cfg_scale_schedule"][index]
                for _ in range(settings["steps"]):
                    noisy = denoise(
                        model, noisy, cond, uncond, cfg_scale, settings["sampler"]
                    )
                strength = values["strength_schedule"][index]
                frame = strength * frame + (1.0 - strength) * noisy
            if settings["color_coherence"] == "Match Frame 0" and first is not None:
                frame = match_colors(frame, first)
            mean = frame.mean()
            frame = (frame - mean) * values["contrast_schedule"][index] + mean
            frame = frame.clamp(-1.0, 1.0)
            if first is None:
                first = frame
            yield index, frame[0]
