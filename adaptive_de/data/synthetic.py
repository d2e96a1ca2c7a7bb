"""The synthetic face-parsing benchmark: procedural faces in LaPa's 11 classes.

Every face is drawn from a small set of shapes (ellipses with signed distances, so images are
anti-aliased while label maps stay hard class ids), painted in depth order: background
clutter, hair behind the head, neck and clothes, face skin, nose, lips, eyes, brows, fringe,
then occluders (labelled background). Nuisance factors (pose, yaw, light, colour, blur, noise,
occlusion) come from ranges that differ per split: ``train`` is NARROW (near-frontal, upright,
centred, well lit, clean), ``val``/``test`` are WIDE. That train→test shift is what good
augmentation closes and bad augmentation (a flip without the left/right swap) widens.

Coordinates: image x grows to the right, y downwards, both in [-1, 1]. "Left" follows LaPa:
the subject's left, which a frontal face shows on the image's right (x > 0).

Determinism: every random number is a hash of (seed, split, face index, parameter name), and
pixel noise comes from a fixed noise bank indexed by per-face offsets, so a face does not
depend on the batch it is rendered in.

Identities: given an identity id per face, the draws of the identity traits (``IDENTITY_TRAITS``:
face shape, skin and hair colour, hair style, feature geometry, fringe) are keyed by
(seed, split, identity id) instead of the face index, so faces of one identity share them
while pose, light, background, clothes, expression and camera still vary per face.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from .labels import LAPA

SPLITS = ("train", "val", "test")

# LaPa ids, named for readability of the painting code.
BG, SKIN, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, U_LIP, MOUTH, L_LIP, HAIR = range(LAPA.num_classes)


@dataclass(frozen=True)
class Nuisances:
    """Ranges of the nuisance factors. Symmetric factors give the largest absolute value."""

    rotation_deg: float  # in-plane rotation, ± this
    scale: tuple[float, float]  # face size factor; 1 = skin spans ~60-75% of the width
    shift: float  # translation, ± this fraction of the image size
    yaw: float  # head turn in [-1, 1], ± this: features slide sideways, the far side shrinks
    light: float  # directional light strength, up to this
    brightness: tuple[float, float]  # global gain
    contrast: tuple[float, float]
    color_cast: float  # per-channel gain deviation, ± this
    blur: float  # Gaussian sigma in pixels at 64 px, up to this
    noise: float  # sensor noise std (images in [0, 1]), up to this
    occlusion: float  # probability that a face carries an occluder

    def lerp(self, other: Nuisances, t: float) -> Nuisances:
        """The ranges a fraction ``t`` of the way from ``self`` to ``other``."""
        def mix(a, b):
            if isinstance(a, tuple):
                return tuple(mix(x, y) for x, y in zip(a, b, strict=True))
            return a * (1 - t) + b * t  # exact at both ends, unlike a + (b - a) * t
        return replace(self, **{f.name: mix(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})


# Faces fill the frame (scale 1.25-1.35: skin spans ~75-100% of the width), as in tight face crops:
# at 64 px that keeps eyes and brows large enough for the tiny model to learn within ~1,500 steps.
# WIDE is the shift augmentation can close: rotation, size, position, light, colour, blur and noise
# beyond anything in train, while yaw and occlusion (which no image-space op reproduces) stay mild.
NARROW = Nuisances(rotation_deg=4.0, scale=(1.25, 1.35), shift=0.03, yaw=0.12, light=0.15,
                   brightness=(0.92, 1.08), contrast=(0.92, 1.08), color_cast=0.03, blur=0.3, noise=0.01,
                   occlusion=0.0)
WIDE = Nuisances(rotation_deg=45.0, scale=(1.0, 1.6), shift=0.15, yaw=0.25, light=0.4,
                 brightness=(0.35, 1.7), contrast=(0.4, 1.5), color_cast=0.3, blur=1.5, noise=0.1,
                 occlusion=0.1)


def nuisances_for(split: str, shift: float = 1.0) -> Nuisances:
    """Nuisance ranges of a split: train is NARROW; val/test move from NARROW (shift 0) to WIDE (shift 1)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if not 0.0 <= shift <= 1.0:
        raise ValueError(f"shift must be in [0, 1], got {shift}")
    return NARROW if split == "train" else NARROW.lerp(WIDE, shift)


# --------------------------------------------------------------------------- randomness
_MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) on int64 tensors holding 32-bit values."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    return (x >> 16) ^ x


# The draws that make up an identity, by exact name. ``_pick`` draws a palette entry under its
# name and a per-channel jitter under the name plus "r"/"g"/"b"; names are listed rather than
# matched by prefix because per-face draws share prefixes ("hair_tex" noise offsets, "gap").
_PICKED = ("skin", "hair", "iris")
IDENTITY_TRAITS = frozenset({
    "face_rx", "face_aspect", "face_cy", "hair_style", "cap_pad",
    "nose_y", "nose_w", "mouth_y", "mouth_w", "lip_u", "lip_l", "lip",
    "eye_dx", "eye_y", "eye_w", "eye_h", "brow_dy", "brow_w", "brow_h", "brow_tilt",
    "fringe", "fringe_y", "fringe_wave",
    *_PICKED, *(name + c for name in _PICKED for c in "rgb"),
})
_IDENTITY_SALT = 0x27D4EB2F  # keeps identity k's traits apart from face k's draws


class _Draws:
    """Per-face random numbers keyed by (seed, split, face index, name): batch-size independent.

    With ``trait_keys`` (one per face, from its identity id), the names in ``IDENTITY_TRAITS``
    are keyed by those instead, so faces of one identity draw equal traits.
    Values are computed once per name for all faces of a request; ``take`` gives the view of a
    chunk or subset, so rendering in pieces costs no extra hashing.
    """

    def __init__(self, keys: torch.Tensor, trait_keys: torch.Tensor | None = None,
                 parent: _Draws | None = None, index=None):
        self.keys, self.trait_keys, self._parent, self._index = keys, trait_keys, parent, index
        self._cache: dict[str, torch.Tensor] = {}

    @classmethod
    def for_faces(cls, seed: int, split: str, indices: torch.Tensor, identities: torch.Tensor | None = None) -> _Draws:
        base = _mix32(torch.tensor((seed * 0x9E3779B1 + SPLITS.index(split) * 0x85EBCA6B) & _MASK32))
        trait_keys = None
        if identities is not None:
            trait_keys = _mix32(_mix32(base ^ _IDENTITY_SALT) ^ (identities.to(torch.int64) & _MASK32))
        return cls(_mix32(base ^ (indices.to(torch.int64) & _MASK32)), trait_keys)

    def take(self, index) -> _Draws:
        """The draws of the faces ``index`` (a slice or an index tensor)."""
        trait_keys = None if self.trait_keys is None else self.trait_keys[index]
        return _Draws(self.keys[index], trait_keys, self, index)

    def _bits(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            if self._parent is not None:
                self._cache[name] = self._parent._bits(name)[self._index]
            else:
                by_identity = self.trait_keys is not None and name in IDENTITY_TRAITS
                keys = self.trait_keys if by_identity else self.keys
                self._cache[name] = _mix32(keys ^ zlib.crc32(name.encode()))
        return self._cache[name]

    def uniform(self, name: str, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return lo + (hi - lo) * (self._bits(name) & 0xFFFFFF).float() * (1.0 / (1 << 24))

    def symmetric(self, name: str, bound: float) -> torch.Tensor:
        return self.uniform(name, -bound, bound)

    def bernoulli(self, name: str, p: float) -> torch.Tensor:
        return self.uniform(name) < p

    def choice(self, name: str, n: int) -> torch.Tensor:
        return (self.uniform(name) * n).long().clamp_(max=n - 1)

    def integers(self, name: str, n: int) -> torch.Tensor:
        return self._bits(name) % n


_NOISE_BANK: dict[int, torch.Tensor] = {}


def _noise_bank(size: int) -> torch.Tensor:
    """A fixed [2, 3, 2*size, 2*size] bank of N(0, 1) noise (fine grain and a smooth texture)."""
    if size not in _NOISE_BANK:
        g = torch.Generator().manual_seed(12345 + size)
        fine = torch.randn(1, 3, 2 * size, 2 * size, generator=g)
        smooth = F.avg_pool2d(F.pad(fine, (2, 2, 2, 2), mode="circular"), 5, stride=1) * 5.0
        _NOISE_BANK[size] = torch.cat([fine, smooth])
    return _NOISE_BANK[size]


def _noise_crops(d: _Draws, name: str, size: int, which: int) -> torch.Tensor:
    """[N, 3, size, size] noise: one crop of the bank per face, at a per-face offset."""
    windows = _noise_bank(size)[which].unfold(1, size, 1).unfold(2, size, 1)  # a view: [3, S+1, S+1, S, S]
    return windows[:, d.integers(name + "y", size + 1), d.integers(name + "x", size + 1)].transpose(0, 1)


# --------------------------------------------------------------------------- shapes
def _col(v: torch.Tensor) -> torch.Tensor:
    """Per-face scalars [N] → [N, 1, 1] for broadcasting against pixel grids [N, H, W]."""
    return v[:, None, None]


def _ellipse(x, y, cx, cy, rx, ry, angle=None) -> torch.Tensor:
    """Approximate signed distance to an ellipse: (k - 1) times the smaller radius.

    Exact on the short axis, which is what anti-aliasing of thin shapes (brows, lips) needs.
    """
    dx, dy = x - _col(cx), y - _col(cy)
    if angle is not None:
        c, s = _col(torch.cos(angle)), _col(torch.sin(angle))
        dx, dy = c * dx + s * dy, c * dy - s * dx
    ux, uy = dx * _col(1.0 / rx), dy * _col(1.0 / ry)
    return (torch.sqrt(ux * ux + uy * uy) - 1.0) * _col(torch.minimum(rx, ry))


def _band(t, lo, hi) -> torch.Tensor:
    """Signed distance to the slab lo < t < hi."""
    return torch.maximum(lo - t, t - hi)


def _intersect(*dists: torch.Tensor) -> torch.Tensor:
    out = dists[0]
    for d in dists[1:]:
        out = torch.maximum(out, d)
    return out


def _rgb(r, g, b) -> torch.Tensor:
    return torch.stack([r, g, b], dim=1)


def _const(color, n: int) -> torch.Tensor:
    return torch.tensor(color).expand(n, 3)


class _Layer:
    """Pixels being painted: face-frame coordinates ``x, y`` [N, h, w], ``image`` [N, 3, h, w] in
    [0, 1], ``label`` [N, h, w] and the pixel width ``px`` [N, 1, 1] in face-frame units."""

    x: torch.Tensor
    y: torch.Tensor
    px: torch.Tensor
    image: torch.Tensor
    label: torch.Tensor

    def paint(self, dist: torch.Tensor, color: torch.Tensor, label: int | None, where: torch.Tensor | None = None):
        """Blend ``color`` ([N, 3] or [N, 3, h, w]) by the shape's anti-aliased coverage; set ``label`` inside.

        ``dist`` is the shape's signed distance (negative inside); ``where`` ([N] bool) limits the
        shape to some faces; ``label=None`` paints colour only (shading, irises, teeth).
        """
        alpha = (0.5 - dist / self.px).clamp_(0.0, 1.0)
        if where is not None:
            alpha = alpha * _col(where.float())
        if color.dim() == 2:
            color = color[:, :, None, None]
        self.image.lerp_(color.expand_as(self.image), alpha[:, None])
        if label is not None:
            self.label.masked_fill_(alpha > 0.5, label)  # coverage > 1/2 ⇔ the pixel centre is inside


class _Canvas(_Layer):
    """The whole frame of a chunk of faces, stored flat with one spare "trash" pixel per face so
    that windows reaching past the border can be gathered and scattered without special cases."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, px: torch.Tensor):
        n, size, _ = x.shape
        self.size, self.n = size, n
        far = torch.full((n, 1), 1e4)  # the trash pixel lies far outside every shape
        self.x_flat = torch.cat([x.reshape(n, -1), far], 1)
        self.y_flat = torch.cat([y.reshape(n, -1), far], 1)
        self.image_flat = torch.zeros(n, 3, size * size + 1)
        self.label_flat = torch.zeros(n, size * size + 1, dtype=torch.uint8)
        self.x, self.y, self.px = x, y, px
        self.image = self.image_flat[:, :, :-1].view(n, 3, size, size)
        self.label = self.label_flat[:, :-1].view(n, size, size)

    def window(self, col: torch.Tensor, row: torch.Tensor, k: int) -> _Window:
        """A k×k window per face centred at pixel (col, row) ([N] floats)."""
        ar = torch.arange(k)
        rows = (row - k / 2).round().long()[:, None] + ar
        cols = (col - k / 2).round().long()[:, None] + ar
        inside = ((rows >= 0) & (rows < self.size))[:, :, None] & ((cols >= 0) & (cols < self.size))[:, None, :]
        flat = torch.where(inside, rows[:, :, None] * self.size + cols[:, None, :], self.size * self.size)
        return _Window(self, flat.view(self.n, k * k), k)

    def subset(self, index: torch.Tensor) -> _Subset:
        return _Subset(self, index)


class _Window(_Layer):
    """Per-face k×k windows gathered from a canvas; ``commit`` writes them back."""

    def __init__(self, canvas: _Canvas, flat: torch.Tensor, k: int):
        n = len(flat)
        self.canvas, self.flat, self.flat3 = canvas, flat, flat[:, None].expand(n, 3, k * k)
        self.x = canvas.x_flat.gather(1, flat).view(n, k, k)
        self.y = canvas.y_flat.gather(1, flat).view(n, k, k)
        self.px = canvas.px
        self.image = canvas.image_flat.gather(2, self.flat3).view(n, 3, k, k)
        self.label = canvas.label_flat.gather(1, flat).view(n, k, k)

    def commit(self) -> None:
        n = len(self.flat)
        self.canvas.image_flat.scatter_(2, self.flat3, self.image.view(n, 3, -1))
        self.canvas.label_flat.scatter_(1, self.flat, self.label.view(n, -1))


class _Subset(_Layer):
    """Some faces of a canvas (e.g. the occluded ones); ``commit`` writes them back."""

    def __init__(self, canvas: _Canvas, index: torch.Tensor):
        self.canvas, self.index = canvas, index
        self.x, self.y, self.px = canvas.x[index], canvas.y[index], canvas.px[index]
        self.image, self.label = canvas.image[index], canvas.label[index]

    def commit(self) -> None:
        self.canvas.image[self.index] = self.image
        self.canvas.label[self.index] = self.label


# Palettes (RGB in [0, 1]); faces pick and jitter entries.
_SKIN = torch.tensor([[0.96, 0.80, 0.69], [0.90, 0.72, 0.58], [0.80, 0.60, 0.46], [0.63, 0.45, 0.33],
                      [0.45, 0.31, 0.22], [0.98, 0.86, 0.78]])
_HAIR = torch.tensor([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.45, 0.30, 0.16], [0.80, 0.66, 0.40],
                      [0.55, 0.22, 0.10], [0.70, 0.70, 0.70]])
_IRIS = torch.tensor([[0.25, 0.15, 0.08], [0.10, 0.25, 0.45], [0.20, 0.35, 0.20], [0.08, 0.06, 0.05]])


def _pick(palette: torch.Tensor, d: _Draws, name: str, jitter: float) -> torch.Tensor:
    base = palette[d.choice(name, len(palette))]
    gain = 1.0 + torch.stack([d.symmetric(f"{name}{c}", jitter) for c in "rgb"], dim=1)
    return (base * gain).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- the renderer
# Chunks of ~64 faces at 64 px (1 MB float planes): measured fastest on a 2-core CPU.
_CHUNK_ELEMS = 1 << 18


def render_faces(n: int, *, size: int = 64, seed: int = 0, split: str = "train", shift: float = 1.0,
                 start: int = 0, nuisances: Nuisances | None = None,
                 identities: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``n`` faces (indices ``start .. start+n-1``) of a split.

    Returns ``images`` uint8 [N, 3, size, size] and ``labels`` uint8 [N, size, size] in LaPa ids.
    ``shift`` scales the train→val/test shift (0: one distribution for every split); ``nuisances``
    overrides the split's ranges altogether. The same (seed, split, index) always gives the same face.
    ``identities`` (integers [n], one id per face) makes the ``IDENTITY_TRAITS`` draws depend on
    (seed, split, identity id) instead of the face index: faces with equal ids are one person
    seen under their own pose, light, background, expression and camera.
    """
    if n < 0 or size < 16:
        raise ValueError(f"need n >= 0 and size >= 16, got n={n}, size={size}")
    if identities is not None and (identities.shape != (n,) or identities.is_floating_point()):
        raise ValueError(f"identities must be an integer tensor of shape ({n},), got "
                         f"{identities.dtype} {tuple(identities.shape)}")
    rng = nuisances or nuisances_for(split, shift)
    draws = _Draws.for_faces(seed, split, torch.arange(start, start + n), identities)
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    labels = torch.empty(n, size, size, dtype=torch.uint8)
    chunk = max(1, _CHUNK_ELEMS // (size * size))
    for s in range(0, n, chunk):
        part = slice(s, min(s + chunk, n))
        images[part], labels[part] = _render(draws.take(part), size, rng)
    return images, labels


@dataclass
class _Face:
    """Per-face pose, geometry and colours that the layers share ([N] tensors unless noted)."""

    angle: torch.Tensor
    scale: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor
    yaw: torch.Tensor
    rx: torch.Tensor  # skin half-width, in face-frame units (the image is 2 units wide at scale 1)
    ry: torch.Tensor
    cy: torch.Tensor  # skin centre height
    unit: torch.Tensor  # feature scale ∝ face width
    skin: torch.Tensor  # [N, 3]
    hair: torch.Tensor  # [N, 3]
    style: torch.Tensor  # hair style: 0 short, 1 long, 2 shoulder length, 3 very short

    def to_pixels(self, fx: torch.Tensor, fy: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Face-frame point → image pixel (column, row): the yaw warp, then the similarity."""
        a = self.yaw * _YAW_SHIFT
        fx = torch.where(fx.abs() < 1, fx + a * (1 - fx * fx), fx)
        c, s = torch.cos(self.angle), torch.sin(self.angle)
        u = self.scale * (c * fx - s * fy) + self.tx
        v = self.scale * (s * fx + c * fy) + self.ty
        return (u + 1) * size / 2 - 0.5, (v + 1) * size / 2 - 0.5


_YAW_SHIFT = 0.22  # how far the face's centre line slides at full yaw (face-frame units)
_UNIT_MAX = 0.74 / 0.67  # the largest feature scale (widest face)


def _render(d: _Draws, size: int, rng: Nuisances) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = math.log(rng.scale[0]), math.log(rng.scale[1])
    rx = d.uniform("face_rx", 0.6, 0.74)
    f = _Face(angle=d.symmetric("rot", math.radians(rng.rotation_deg)), scale=torch.exp(d.uniform("scale", lo, hi)),
              tx=d.symmetric("tx", 2 * rng.shift), ty=d.symmetric("ty", 2 * rng.shift), yaw=d.symmetric("yaw", rng.yaw),
              rx=rx, ry=rx * d.uniform("face_aspect", 1.22, 1.38), cy=d.uniform("face_cy", 0.04, 0.12),
              unit=rx / 0.67, skin=_pick(_SKIN, d, "skin", 0.06), hair=_pick(_HAIR, d, "hair", 0.1),
              style=d.choice("hair_style", 4))

    # Image pixel → face frame: the inverse similarity, then the inverse yaw warp.
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    u, v = grid[None, None, :] - _col(f.tx), grid[None, :, None] - _col(f.ty)
    c, s = _col(torch.cos(f.angle)), _col(torch.sin(f.angle))
    x, y = (c * u + s * v) / _col(f.scale), (c * v - s * u) / _col(f.scale)
    cv = _Canvas(_unyaw(x, _col(f.yaw)), y, _col(2.0 / (size * f.scale)))

    _paint_background(cv, d, size)
    hair_texture = f.hair[:, :, None, None] * (1.0 + 0.18 * _noise_crops(d, "hair_tex", size, which=1))
    _paint_head(cv, d, f, hair_texture)
    # Small features are painted in per-face windows around them: a fraction of the frame's pixels.
    stretch = rng.scale[1] * (1 + 1.2 * rng.yaw * _YAW_SHIFT) * _UNIT_MAX * size / 2

    def window(fx, fy, radius):
        return cv.window(*f.to_pixels(fx, fy, size), k=math.ceil(2 * radius * stretch) + 3)

    _paint_nose(window, d, f)
    _paint_mouth(window, d, f)
    _paint_eyes(window, d, f)
    _paint_fringe(cv, d, f, hair_texture)
    _paint_occluders(cv, d, rng, f)
    image = _camera(cv, d, rng, size, f)
    return (image * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8), cv.label


def _unyaw(p: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Invert the yaw warp q → q + a(1 - q²) on |q| < 1 (a = yaw·shift; identity outside).

    The warp slides the middle of the face sideways while the head's outline stays put, so the
    side it slides towards is compressed: the far side of a turned head.
    """
    a = yaw * _YAW_SHIFT
    r = p - a
    disc = (1.0 + 4.0 * a * r).clamp_(min=0.0)  # solve a q² + q - r = 0 for the root near r
    q = 2.0 * r / (1.0 + torch.sqrt(disc))
    return torch.where(p.abs() < 1.0, q, p)


def _paint_background(cv: _Canvas, d: _Draws, size: int) -> None:
    base = _rgb(d.uniform("bg_r", 0.1, 0.9), d.uniform("bg_g", 0.1, 0.9), d.uniform("bg_b", 0.1, 0.9))
    texture = _noise_crops(d, "bg_tex", size, which=1) * _col(d.uniform("bg_tex_amp", 0.02, 0.12))[:, None]
    ramp = cv.y[:, None] * _col(d.symmetric("bg_ramp", 0.25))[:, None]
    torch.add(base[:, :, None, None], texture + ramp, out=cv.image).clamp_(0.0, 1.0)
    for k in range(2):  # clutter: blobs of random colour behind the head
        blob = _ellipse(cv.x, cv.y, d.symmetric(f"cl{k}x", 1.6), d.symmetric(f"cl{k}y", 1.6),
                        d.uniform(f"cl{k}rx", 0.1, 0.45), d.uniform(f"cl{k}ry", 0.1, 0.45))
        color = _rgb(d.uniform(f"cl{k}r"), d.uniform(f"cl{k}g"), d.uniform(f"cl{k}b"))
        cv.paint(blob, color, None, where=d.bernoulli(f"cl{k}", 0.7))


def _paint_head(cv: _Canvas, d: _Draws, f: _Face, hair_texture: torch.Tensor) -> None:
    """Hair behind the head, neck and clothes (background in LaPa), then the face skin."""
    zero = torch.zeros_like(f.rx)
    # A cap over the top of the head; long styles add curtains beside the face down to the frame.
    cap_r = f.rx + d.uniform("cap_pad", 0.08, 0.2) * (f.style != 3).float() + 0.03
    cap = torch.maximum(_ellipse(cv.x, cv.y, zero, f.cy - 0.12, cap_r, f.ry * 0.98), cv.y - _col(f.cy))
    length = torch.where(f.style == 1, torch.full_like(zero, 1.8), torch.where(f.style == 2, f.cy + 0.7, f.cy - 0.2))
    curtain = torch.maximum(cv.x.abs() - _col(cap_r), _band(cv.y, _col(f.cy) - 0.3, _col(length)))
    cv.paint(torch.minimum(cap, curtain), hair_texture, HAIR)

    neck = torch.maximum(cv.x.abs() - _col(0.34 * f.unit), _col(f.cy + 0.3) - cv.y)
    cv.paint(neck, f.skin * 0.85, BG)
    cloth = _ellipse(cv.x, cv.y, zero, f.cy + f.ry + 0.55, f.rx * 1.9, torch.full_like(zero, 0.6))
    cv.paint(cloth, _rgb(d.uniform("cloth_r"), d.uniform("cloth_g"), d.uniform("cloth_b")), BG)
    # Long hair falls in front of the shoulders.
    front = torch.maximum(curtain, _col(f.rx * 0.8) - cv.x.abs())
    cv.paint(front, hair_texture, HAIR, where=f.style == 1)

    cv.paint(_ellipse(cv.x, cv.y, zero, f.cy, f.rx, f.ry), f.skin, SKIN)


def _paint_nose(window, d: _Draws, f: _Face) -> None:
    """A slightly darker, redder ridge with two nostrils."""
    u, zero = f.unit, torch.zeros_like(f.unit)
    nose_y = f.cy + 0.1 * u + d.symmetric("nose_y", 0.03)
    w = window(zero, nose_y, radius=0.24)
    w.paint(_ellipse(w.x, w.y, zero, nose_y, 0.085 * u * d.uniform("nose_w", 0.85, 1.2), 0.2 * u),
            f.skin * torch.tensor([0.86, 0.76, 0.74]), NOSE)
    for side in (-1, 1):
        w.paint(_ellipse(w.x, w.y, side * 0.04 * u, nose_y + 0.15 * u, 0.025 * u, 0.016 * u), f.skin * 0.45, None)
    w.commit()


def _paint_mouth(window, d: _Draws, f: _Face) -> None:
    """One ellipse split at the mouth line into upper and lower lip; open mouths show the inside."""
    u, zero, n = f.unit, torch.zeros_like(f.unit), len(f.unit)
    mouth_y = f.cy + 0.46 * u + d.symmetric("mouth_y", 0.03)
    half_w = 0.21 * u * d.uniform("mouth_w", 0.85, 1.2)
    up, low = 0.055 * u * d.uniform("lip_u", 0.8, 1.3), 0.07 * u * d.uniform("lip_l", 0.8, 1.3)
    gap = torch.where(d.bernoulli("mouth_open", 0.4), d.uniform("gap", 0.03, 0.1) * u, zero)
    w = window(zero, mouth_y + 0.03 * u, radius=0.31)
    lips = _ellipse(w.x, w.y, zero, mouth_y + (low - up) / 2, half_w, (up + low + gap) / 2)
    lip_color = (f.skin * torch.tensor([0.95, 0.55, 0.55]) * d.uniform("lip", 0.85, 1.1)[:, None]).clamp(0, 1)
    w.paint(torch.maximum(lips, w.y - _col(mouth_y)), lip_color, U_LIP)
    w.paint(torch.maximum(lips, _col(mouth_y) - w.y), lip_color * 0.92, L_LIP)
    opened = gap > 0
    inner = _ellipse(w.x, w.y, zero, mouth_y + gap / 2, half_w * 0.82, gap / 2 + 1e-3)
    w.paint(inner, _const([0.35, 0.08, 0.08], n), MOUTH, where=opened)
    teeth = torch.maximum(inner, _band(w.y, _col(mouth_y), _col(mouth_y + gap * 0.35)))
    w.paint(teeth, _const([0.92, 0.9, 0.85], n), None, where=opened)
    w.commit()


def _eye_geometry(f: _Face, d: _Draws) -> tuple[torch.Tensor, torch.Tensor]:
    """Eye centre offset from the midline and eye height (shared with sunglasses)."""
    return 0.27 * f.unit * d.uniform("eye_dx", 0.92, 1.08), f.cy - 0.13 * f.unit + d.symmetric("eye_y", 0.03)


def _paint_eyes(window, d: _Draws, f: _Face) -> None:
    """Sclera ellipses (the eye label) with irises; brows as tilted thin ellipses above them."""
    u, n = f.unit, len(f.unit)
    eye_dx, eye_y = _eye_geometry(f, d)
    eye_w, eye_h = 0.12 * u * d.uniform("eye_w", 0.85, 1.15), 0.06 * u * d.uniform("eye_h", 0.8, 1.2)
    iris = _pick(_IRIS, d, "iris", 0.1)
    gaze = d.symmetric("gaze", 0.04) * u
    brow_dy = 0.16 * u * d.uniform("brow_dy", 0.85, 1.15)
    brow_w, brow_h = 0.15 * u * d.uniform("brow_w", 0.9, 1.15), 0.045 * u * d.uniform("brow_h", 0.8, 1.3)
    brow_tilt = d.symmetric("brow_tilt", 0.25)
    for side, eye_id, brow_id in ((1, L_EYE, L_BROW), (-1, R_EYE, R_BROW)):  # subject's left is image right
        cx = side * eye_dx
        w = window(cx, eye_y - 0.07 * u, radius=0.29)
        eye = _ellipse(w.x, w.y, cx, eye_y, eye_w, eye_h)
        w.paint(eye, _const([0.95, 0.95, 0.92], n), eye_id)
        w.paint(torch.maximum(_ellipse(w.x, w.y, cx + gaze, eye_y, eye_h * 0.95, eye_h * 0.95), eye), iris, None)
        w.paint(_ellipse(w.x, w.y, cx + side * 0.02 * u, eye_y - brow_dy, brow_w, brow_h, side * brow_tilt),
                f.hair * 0.7, brow_id)
        w.commit()


def _paint_fringe(cv: _Canvas, d: _Draws, f: _Face, hair_texture: torch.Tensor) -> None:
    """Hair over the forehead whose wavy lower edge may cover part of the brows."""
    has = d.bernoulli("fringe", 0.35) & (f.style != 3)
    index = has.nonzero()[:, 0]
    if len(index) == 0:
        return
    sub, g = cv.subset(index), _take(f, index)
    edge = (_col(g.cy - d.uniform("fringe_y", 0.28, 0.5)[index] * g.unit)
            + 0.03 * torch.sin(sub.x * 9.0 + _col(d.uniform("fringe_wave", 0, 6)[index])))
    fringe = torch.maximum(sub.y - edge, _ellipse(sub.x, sub.y, torch.zeros_like(g.rx), g.cy, g.rx + 0.02, g.ry))
    sub.paint(fringe, hair_texture[index], HAIR)
    sub.commit()


def _take(f: _Face, index: torch.Tensor) -> _Face:
    return _Face(**{k: getattr(f, k)[index] for k in f.__dataclass_fields__})


def _paint_occluders(cv: _Canvas, d: _Draws, rng: Nuisances, f: _Face) -> None:
    """Bars, blobs and sunglasses in front of the face; occluded pixels are background."""
    index = d.bernoulli("occ", rng.occlusion).nonzero()[:, 0]
    if len(index) == 0:
        return
    sub, g, e = cv.subset(index), _take(f, index), d.take(index)
    kind = e.choice("occ_kind", 3)
    color = _rgb(e.uniform("occ_r"), e.uniform("occ_g"), e.uniform("occ_b"))
    ox, oy, a = e.symmetric("occ_x", 0.5), e.uniform("occ_y", -0.5, 0.7), e.uniform("occ_angle", 0.0, math.pi)
    # A bar: the slab of half-width w around the line through (ox, oy) at angle a.
    across = _col(torch.cos(a)) * (sub.y - _col(oy)) - _col(torch.sin(a)) * (sub.x - _col(ox))
    sub.paint(across.abs() - _col(e.uniform("occ_w", 0.05, 0.14)), color, BG, where=kind == 0)
    blob = _ellipse(sub.x, sub.y, ox, oy, e.uniform("occ_rx", 0.15, 0.35), e.uniform("occ_ry", 0.15, 0.35), a)
    sub.paint(blob, color, BG, where=kind == 1)
    eye_dx, eye_y = _eye_geometry(g, e)
    lenses = torch.minimum(*[_ellipse(sub.x, sub.y, side * eye_dx, eye_y, 0.17 * g.unit, 0.12 * g.unit)
                             for side in (-1, 1)])
    bridge = torch.maximum(_band(sub.x, _col(-eye_dx), _col(eye_dx)),
                           _band(sub.y, _col(eye_y - 0.06 * g.unit), _col(eye_y - 0.02 * g.unit)))
    sub.paint(torch.minimum(lenses, bridge), color * 0.25, BG, where=kind == 2)
    sub.commit()


def _camera(cv: _Canvas, d: _Draws, rng: Nuisances, size: int, f: _Face) -> torch.Tensor:
    """Light, exposure, colour cast, lens blur and sensor noise on the painted image."""
    # Directional light on a head-shaped pseudo-normal (the background gets the same gradient).
    theta = d.uniform("light_dir", 0.0, 2 * math.pi)
    strength = d.uniform("light", 0.0, rng.light)
    nx = (cv.x * _col(1 / (f.rx + 0.15))).clamp_(-1, 1)
    ny = ((cv.y - _col(f.cy)) * _col(1 / (f.ry + 0.15))).clamp_(-1, 1)
    shade = nx.mul_(_col(strength * torch.cos(theta))).add_(ny.mul_(_col(strength * torch.sin(theta)))).add_(1.0)

    contrast = d.uniform("contrast", *rng.contrast)
    cast = 1.0 + torch.stack([d.symmetric(f"cast{ch}", rng.color_cast) for ch in "rgb"], dim=1)
    gain = (d.uniform("brightness", *rng.brightness)[:, None] * cast)[:, :, None, None]
    image = (cv.image * shade[:, None] - 0.5).mul_(_col(contrast)[:, None]).add_(0.5).mul_(gain)

    image = _blur(image, d.uniform("blur", 0.0, rng.blur) * (size / 64.0), radius=math.ceil(2.5 * rng.blur * size / 64))
    noise = _noise_crops(d, "noise", size, which=0) * _col(d.uniform("noise", 0.0, rng.noise))[:, None]
    return image.add_(noise).clamp_(0.0, 1.0)


def _blur(image: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with a per-face sigma (grouped convolution, one kernel per face).

    The radius depends on the nuisance range, not on the batch, so a face's pixels do not
    depend on its neighbours in the batch. Sigmas under 0.3 px (a near-delta kernel) are skipped.
    """
    index = (sigma >= 0.3).nonzero()[:, 0]
    if radius < 1 or len(index) == 0:
        return image
    n, _, h, w = image.shape
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps[None] / sigma[index, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(3, 0)  # [3m, taps]
    m3 = 3 * len(index)
    x = F.pad(image[index].reshape(1, m3, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel[:, None, None, :], groups=m3)
    x = F.conv2d(x, kernel[:, None, :, None], groups=m3)
    image[index] = x.view(-1, 3, h, w)
    return image
