"""The op list the agent acts on, and :func:`apply_ops`, which runs any mix of them on a batch.

Every op takes a per-sample magnitude in [0, 1]; 0 leaves that sample exactly as it was. Ops with
a direction draw a random sign per sample. At magnitude 1 the ops reach these ranges (``RANGES``):

============  ====================================================================
rotate        ±40°, positive = counter-clockwise
scale         factor 1.6^(±m): 0.625 – 1.6, log-symmetric (> 1 enlarges)
translate_x   ±20 % of the width
translate_y   ±20 % of the height
shear         x += ±0.3 · y
hflip         mirror (and swap left/right label ids) when the magnitude is > 0.5
brightness    factor 1 ± 0.6
contrast      factor 1 ± 0.6, about the image's mean luma
gamma         exponent 2^(±m): 0.5 – 2
saturation    factor 1 ± 0.6
hue           ±0.1 turn (36°) about the grey axis
sharpness     factor 1 ± 0.9 (PIL's ImageEnhance.Sharpness)
blur          Gaussian, sigma 3 px · m
noise         additive Gaussian, std 0.1 · m
grayscale     blend toward luma by m (1 = grey)
erase         one rectangle covering 25 % · m of the image, random solid colour
============  ====================================================================

Magnitudes scale these linearly (or in log space for scale and gamma), so "half strength" (a level
2 of 4) is a rotation up to 20°, translations up to 10 %, scale 0.79 – 1.27, colour factors 1 ± 0.3,
hue ±18°, blur sigma up to 1.5 px and noise std up to 0.05 — the usual face-parsing ranges.

:func:`apply_ops` runs, in this order: one affine warp for all geometric ops (one ``grid_sample``
for the images, one for the labels), one colour matrix for brightness, contrast, saturation, hue
and greyscale, then gamma, sharpness, blur, noise and erase. An op that no sample needs costs
nothing; one that only some samples need runs on those samples only.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

from adaptive_de.augment import color, geometric, occlusion
from adaptive_de.data.labels import LAPA, LabelScheme

OPS: tuple[str, ...] = (
    "rotate", "scale", "translate_x", "translate_y", "shear", "hflip",
    "brightness", "contrast", "gamma", "saturation", "hue", "sharpness",
    "blur", "noise", "grayscale", "erase",
)
"""Op names in the agent's action order (the columns of a magnitude matrix)."""

RANGES: Mapping[str, float] = MappingProxyType({
    "rotate": 40.0,        # degrees
    "scale": 1.6,          # largest factor; the smallest is 1 / 1.6
    "translate_x": 0.2,    # fraction of the width
    "translate_y": 0.2,    # fraction of the height
    "shear": 0.3,          # x shift per pixel of y
    "hflip": 0.5,          # flip when the magnitude exceeds this
    "brightness": 0.6,     # factor deviation
    "contrast": 0.6,
    "gamma": 2.0,          # largest exponent; the smallest is 1 / 2
    "saturation": 0.6,
    "hue": 0.1,            # turns
    "sharpness": 0.9,
    "blur": 3.0,           # sigma in pixels
    "noise": 0.1,          # std on the [0, 1] scale
    "grayscale": 1.0,      # blend weight
    "erase": 0.25,         # fraction of the image area
})
"""What magnitude 1 means for each op (see the module docstring)."""

_COL = {name: i for i, name in enumerate(OPS)}
_GEOMETRIC = [_COL[n] for n in ("rotate", "scale", "translate_x", "translate_y", "shear")]
_LINEAR_COLOR = [_COL[n] for n in ("brightness", "contrast", "saturation", "hue", "grayscale")]


def magnitude_matrix(
    magnitudes: torch.Tensor | Mapping[str, float | torch.Tensor],
    batch_size: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """float32 [batch_size, len(OPS)] magnitudes, clamped to [0, 1].

    Accepts a tensor [B, len(OPS)] (or [len(OPS)] for the whole batch) or a mapping from op name to a
    float or a tensor [B]; ops missing from the mapping are off.
    """
    if isinstance(magnitudes, Mapping):
        unknown = sorted(set(magnitudes) - set(OPS))
        if unknown:
            raise ValueError(f"unknown op name(s) {unknown}; ops are {', '.join(OPS)}")
        out = torch.zeros(batch_size, len(OPS), device=device)
        for name, value in magnitudes.items():
            out[:, _COL[name]] = torch.as_tensor(value, dtype=torch.float32).to(device)
        return out.clamp_(0, 1)
    if magnitudes.shape not in ((batch_size, len(OPS)), (len(OPS),)):
        raise ValueError(f"magnitudes must have shape [{batch_size}, {len(OPS)}] or [{len(OPS)}], "
                         f"got {list(magnitudes.shape)}")
    return magnitudes.to(device, torch.float32).expand(batch_size, len(OPS)).clamp(0, 1)


def check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ValueError unless images are [B, 3, H, W] and labels are integer [B, H, W] of the same B, H, W."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got {list(images.shape)}")
    if labels.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"labels must be [B, H, W] = {[images.shape[0], *images.shape[2:]]}, got {list(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")


class _Batch:
    """The images and labels under augmentation.

    An op runs on the whole batch when every sample needs it, otherwise on the samples that do, and
    its result is written back. The caller's tensors are never modified: the first partial write
    copies them, later ones write in place.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels
        self._own_images = self._own_labels = False

    def apply(self, active: torch.Tensor, op: Callable[..., torch.Tensor | tuple[torch.Tensor, torch.Tensor]],
              *params: torch.Tensor, with_labels: bool = False) -> None:
        """``op(images, [labels,] *params)`` on the samples where ``active`` [B] (bool, any device) is set.

        ``params`` are per-sample tensors [B, ...] on the images' device; ``op`` must return new
        tensors (images, or (images, labels) when ``with_labels``).
        """
        if bool(active.all()):
            index = None
            inputs = (self.images, self.labels) if with_labels else (self.images,)
        else:
            index = active.nonzero().squeeze(1).to(self.images.device, non_blocking=True)
            inputs = tuple(t.index_select(0, index) for t in (self.images, self.labels)[:1 + with_labels])
            params = tuple(p.index_select(0, index) for p in params)
        out = op(*inputs, *params)
        images, labels = out if with_labels else (out, None)
        self.images = self._put(self.images, self._own_images, index, images)
        self._own_images = True
        if with_labels:
            self.labels = self._put(self.labels, self._own_labels, index, labels)
            self._own_labels = True

    @staticmethod
    def _put(whole: torch.Tensor, owned: bool, index: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
        if index is None:
            return part
        return whole.index_copy_(0, index, part) if owned else whole.index_copy(0, index, part)


def _noise_windows(count: int, numel: int, generator: torch.Generator | None,
                   device: torch.device) -> tuple[int, int]:
    """Random (start, step) that place ``count`` windows of ``numel`` values inside the noise bank."""
    span = color.noise_bank_length(numel) - numel  # last possible start
    u_step, u_start = torch.rand(2, generator=generator, device=device).tolist()
    step = 1 + int(u_step * max(1, span // max(count - 1, 1)))  # in [1, span / (count - 1)]
    start = int(u_start * (span - (count - 1) * step + 1))
    return start, step


def apply_ops(
    images: torch.Tensor,
    labels: torch.Tensor,
    magnitudes: torch.Tensor | Mapping[str, float | torch.Tensor],
    scheme: LabelScheme = LAPA,
    *,
    generator: torch.Generator | None = None,
    erase_to_background: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment float images [B, 3, H, W] in [0, 1] and integer labels [B, H, W] with per-sample magnitudes.

    ``magnitudes``: see :func:`magnitude_matrix`. Random signs, noise offsets and erase boxes come
    from ``generator`` (``None``: torch's default CPU generator). All per-sample parameters are
    computed on the generator's device and the ops on the images' device; with a CPU generator and
    CUDA images nothing here waits for the GPU. Returns new tensors, or the inputs themselves when
    no sample changes. Labels keep their dtype and hold the scheme's class ids (or its ignore id).
    """
    check_batch(images, labels)
    b, _, h, w = images.shape
    param_device = generator.device if generator is not None else torch.device("cpu")
    mags = magnitude_matrix(magnitudes, b, param_device)
    flip = mags[:, _COL["hflip"]] > RANGES["hflip"]
    on = mags > 0
    on[:, _COL["hflip"]] = flip
    if not bool(on.any()):
        return images, labels

    # One random sign per sample and op, drawn whether or not the op is used (keeps the stream simple).
    signs = torch.randint(0, 2, (b, len(OPS)), generator=generator, device=param_device) * 2 - 1
    m = dict(zip(OPS, (mags * signs).unbind(1), strict=True))  # signed magnitudes
    batch = _Batch(images, labels)

    def to_device(*tensors: torch.Tensor) -> list[torch.Tensor]:
        """Per-sample parameters onto the images' device, floating ones in the images' dtype."""
        return [t.to(images.device, images.dtype if t.is_floating_point() else t.dtype, non_blocking=True)
                for t in tensors]

    geometric_on = on[:, _GEOMETRIC].any(1) | flip
    if bool(geometric_on.any()):
        theta = geometric.affine_theta(
            angle=m["rotate"] * RANGES["rotate"],
            scale=torch.pow(RANGES["scale"], m["scale"]),
            translate=torch.stack([m["translate_x"] * (RANGES["translate_x"] * w),
                                   m["translate_y"] * (RANGES["translate_y"] * h)], dim=1),
            shear=m["shear"] * RANGES["shear"],
            flip=flip,
            size=(h, w),
        )
        if bool(flip.any()):
            batch.apply(geometric_on, lambda x, y, t, f: geometric.warp(x, y, t, f, scheme),
                        *to_device(theta, flip), with_labels=True)
        else:
            batch.apply(geometric_on, lambda x, y, t: geometric.warp(x, y, t, None, scheme),
                        *to_device(theta), with_labels=True)

    color_on = on[:, _LINEAR_COLOR].any(1)
    if bool(color_on.any()):
        matrix, offset = color.color_matrices(
            brightness=1 + m["brightness"] * RANGES["brightness"],
            contrast=1 + m["contrast"] * RANGES["contrast"],
            saturation=1 + m["saturation"] * RANGES["saturation"],
            hue=m["hue"] * (RANGES["hue"] * 2 * math.pi),
            grayscale=mags[:, _COL["grayscale"]] * RANGES["grayscale"],
        )
        if bool(on[:, _COL["contrast"]].any()):
            batch.apply(color_on, color.apply_color, *to_device(matrix, offset))
        else:  # no offset: spares the pass over the images for their mean luma
            batch.apply(color_on, lambda x, mat: color.apply_color(x, mat, None), *to_device(matrix))

    def run(name: str, op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], param: torch.Tensor) -> None:
        active = on[:, _COL[name]]
        if bool(active.any()):
            batch.apply(active, op, *to_device(param))

    run("gamma", color.adjust_gamma, torch.pow(RANGES["gamma"], m["gamma"]))
    run("sharpness", color.adjust_sharpness, 1 + m["sharpness"] * RANGES["sharpness"])
    # Samples at sigma 0 are skipped; the clamp only keeps their (unused) operators finite.
    run("blur", color.gaussian_blur, (mags[:, _COL["blur"]] * RANGES["blur"]).clamp_min(0.01))

    noise_on = on[:, _COL["noise"]]
    if bool(noise_on.any()):
        start, step = _noise_windows(int(noise_on.sum()), 3 * h * w, generator, param_device)
        std = m["noise"] * RANGES["noise"]
        batch.apply(noise_on, lambda x, s: color.add_noise(x, s, start, step), *to_device(std))

    erase_on = on[:, _COL["erase"]]
    if bool(erase_on.any()):
        uniforms = torch.rand(b, 6, generator=generator, device=param_device)
        boxes = occlusion.erase_boxes(mags[:, _COL["erase"]] * RANGES["erase"], uniforms[:, :3], (h, w))
        params = to_device(boxes, uniforms[:, 3:])
        if erase_to_background:
            batch.apply(erase_on, occlusion.erase, *params, with_labels=True)
        else:
            batch.apply(erase_on, occlusion.erase_images, *params)
    return batch.images, batch.labels
