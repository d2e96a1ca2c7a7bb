"""Photometric ops on float images [B, 3, H, W] in [0, 1], each with per-sample parameters.

The linear ones (brightness, contrast, saturation, hue, greyscale) compose into one 3x3 matrix
plus an offset per sample, applied by a single batched matmul; gamma, sharpness, blur and noise
follow as separate batched ops.
"""
from __future__ import annotations

import functools

import torch

# ITU-R BT.601 luma, as PIL and torchvision use for greyscale.
LUMA = (0.299, 0.587, 0.114)
# RGB → YIQ; hue turns the (I, Q) chroma plane about the grey (Y) axis.
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))

NOISE_BANK_MIN = 1 << 21
"""Smallest length of the fixed banks of N(0, 1) values that noise is cut from (see :func:`add_noise`)."""


@functools.lru_cache(maxsize=1)
def _hue_basis() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """3x3 matrices (K0, Kc, Ks) with hue_rotation(θ) = K0 + cos θ · Kc + sin θ · Ks."""
    yiq = torch.tensor(_YIQ, dtype=torch.float64)
    inv = torch.linalg.inv(yiq)
    turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    k0 = inv[:, :1] @ yiq[:1]
    kc = inv[:, 1:] @ yiq[1:]
    ks = inv[:, 1:] @ turn @ yiq[1:]
    return k0.float(), kc.float(), ks.float()


def color_matrices(
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
    grayscale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose the linear colour ops, applied in this order, into ``(matrix [B, 3, 3], offset [B, 3])``.

    ``brightness``, ``contrast``, ``saturation`` [B] are factors (1 = unchanged, as in torchvision),
    ``hue`` [B] an angle in radians about the grey axis, ``grayscale`` [B] the blend weight toward luma
    (1 = grey). Contrast blends toward the image's mean luma, so the offset is given per unit mean luma:
    the pixel map is ``v → matrix · v + offset · mean_luma(image)``. Unlike torchvision there is no
    clamp between the ops, only one at the end (that is what lets them compose).
    """
    eye = torch.eye(3, dtype=brightness.dtype, device=brightness.device)
    grey = torch.tensor(LUMA, dtype=brightness.dtype, device=brightness.device).expand(3, 3)  # rows: v → luma(v)·1

    def blend_to_grey(keep: torch.Tensor) -> torch.Tensor:
        keep = keep.view(-1, 1, 1)
        return keep * eye + (1 - keep) * grey

    k0, kc, ks = (k.to(brightness.device, brightness.dtype) for k in _hue_basis())
    hue_m = k0 + torch.cos(hue).view(-1, 1, 1) * kc + torch.sin(hue).view(-1, 1, 1) * ks
    after_contrast = blend_to_grey(1 - grayscale) @ hue_m @ blend_to_grey(saturation)
    matrix = after_contrast * (contrast * brightness).view(-1, 1, 1)
    # Contrast adds (1 - c) · mean luma of the brightened image, i.e. (1 - c) · b · mean_luma(input), on grey.
    offset = after_contrast.sum(2) * ((1 - contrast) * brightness).view(-1, 1)
    return matrix, offset


@functools.cache
def _luma_weights(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # made once per device: building it from a list in every step would be a host-to-device copy that waits
    return torch.tensor(LUMA, device=device, dtype=dtype)


def mean_luma(images: torch.Tensor) -> torch.Tensor:
    """[B]: the mean luma of each image."""
    return images.mean((2, 3)) @ _luma_weights(images.device, images.dtype)


def apply_color(images: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    """``clamp(matrix · v + offset · mean_luma)`` for every pixel v, as one batched matmul.

    ``offset`` None means no contrast change anywhere, which saves the pass over the image for the mean.
    """
    b, c, h, w = images.shape
    flat = images.reshape(b, c, h * w)
    if offset is None:
        out = torch.bmm(matrix, flat)
    else:
        out = torch.baddbmm((offset * mean_luma(images).unsqueeze(1)).unsqueeze(2), matrix, flat)
    return out.clamp_(0, 1).view(b, c, h, w)


def adjust_gamma(images: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``images ** gamma`` with a per-sample exponent [B] (> 0)."""
    # exp(gamma · log x) is several times faster than pow with a broadcast exponent on CPUs; log 0 = -inf → 0.
    return torch.log(images).mul_(gamma.view(-1, 1, 1, 1)).exp_()


def adjust_sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with a smoothed copy, as PIL's ``ImageEnhance.Sharpness`` and torchvision do.

    ``factor`` [B]: 0 gives the smoothed image, 1 the original, 2 a sharpened one. The smoothing kernel
    is PIL's [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13; the one-pixel border keeps the original pixels.
    """
    # (3x3 box sum + 4 · centre) / 13, from shifted views: a conv2d would re-JIT a oneDNN kernel for
    # every new batch size, and the batch here is whichever samples drew this op.
    rows = images[..., :-2, :] + images[..., 1:-1, :]
    rows += images[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1]
    box += rows[..., 2:]
    smooth = images.clone()
    smooth[..., 1:-1, 1:-1] = box.add_(images[..., 1:-1, 1:-1], alpha=4).div_(13)
    return torch.lerp(smooth, images, factor.view(-1, 1, 1, 1)).clamp_(0, 1)


def gaussian_matrices(sigma: torch.Tensor, n: int) -> torch.Tensor:
    """[B, n, n] 1-D Gaussian blur operators: row i holds the weights of the pixels j around pixel i.

    Weights below 1e-6 of the centre are set to zero (denormal floats would slow the matmuls down many
    times), and each row is renormalised over the pixels inside the image, so borders need no padding.
    """
    offsets = torch.arange(1 - n, n, device=sigma.device, dtype=sigma.dtype)
    profile = torch.exp(offsets.square() * (-0.5 / sigma.square()).unsqueeze(1))  # [B, 2n-1]: weight at i - j
    profile = profile.masked_fill_(profile < 1e-6, 0)
    # A Toeplitz matrix without a gather: the strided view is the Hankel matrix profile[i + j]; flipping
    # its columns gives profile[i - j + n - 1], i.e. the weight of pixel j for pixel i.
    weights = profile.as_strided((sigma.shape[0], n, n), (2 * n - 1, 1, 1)).flip(-1)
    return weights / weights.sum(2, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each image [B, 3, H, W] with its own ``sigma`` [B] in pixels (> 0).

    Each 1-D pass is one batched matmul with per-sample [n, n] operators (:func:`gaussian_matrices`):
    any sigma, no kernel truncation to choose, and no shape-dependent kernels (a depthwise conv2d would
    re-JIT a oneDNN kernel for every new subset size). It costs O(H + W) multiply-adds per pixel, less
    than a conv at face-parsing sizes (<= 128 px) on CPUs and negligible on GPUs.
    """
    b, c, h, w = images.shape
    rows = gaussian_matrices(sigma, w)
    cols = rows if h == w else gaussian_matrices(sigma, h)
    out = torch.bmm(images.reshape(b, c * h, w), rows.transpose(1, 2)).view(b, c, h, w)
    return torch.matmul(cols.unsqueeze(1), out)


_noise_banks: dict[tuple[torch.device, int], torch.Tensor] = {}


def noise_bank_length(numel: int) -> int:
    """Length of the noise bank used for images of ``numel`` values each: room for many distinct offsets."""
    return max(NOISE_BANK_MIN, 1 << (2 * numel - 1).bit_length())


def noise_bank(device: torch.device, length: int) -> torch.Tensor:
    """float32 [length] of N(0, 1) values from a fixed seed, cached per device and length."""
    bank = _noise_banks.get((device, length))
    if bank is None:
        bank = torch.randn(length, generator=torch.Generator().manual_seed(0x5EED)).to(device)
        _noise_banks[(device, length)] = bank
    return bank


def add_noise(images: torch.Tensor, std: torch.Tensor, start: int, step: int) -> torch.Tensor:
    """Add Gaussian noise of per-sample ``std`` [B] (a negative std flips the noise), then clamp.

    Drawing fresh normals costs about as much as the rest of the pipeline on a CPU, so the noise is
    cut from a fixed N(0, 1) bank: image i takes the ``3·H·W`` consecutive values that start at
    ``start + i·step``. One strided view covers the batch, so nothing is copied or gathered.
    Each image's noise is i.i.d. Gaussian; images of one batch overlap at most as shifted copies,
    which a model cannot exploit. The caller draws ``start`` and ``step`` (>= 1) at random so that
    the last window ends inside ``noise_bank_length(3·H·W)``.
    """
    b = images.shape[0]
    n = images[0].numel()
    bank = noise_bank(images.device, noise_bank_length(n))
    noise = bank.as_strided((b, n), (step, 1), start).view_as(images).to(images.dtype)
    return torch.addcmul(images, noise, std.view(b, 1, 1, 1)).clamp_(0, 1)
