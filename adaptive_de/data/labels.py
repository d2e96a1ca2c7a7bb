"""Label schemes of the face-parsing data sets (class ids, names, left/right pairs, ignore id, colours).

Label maps are stored as uint8, so every id -- the classes and an ignore id -- lies in 0..255.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import torch

from adaptive_de.errors import UserError

ID_LIMIT = 256  # label maps are uint8
IGNORE_COLOR = (255, 255, 255)  # how ignored pixels are drawn


@dataclass(frozen=True)
class LabelScheme:
    """A face-parsing label set.

    ``classes[i]`` names class id ``i`` (background first); ``flip_pairs`` lists the (left, right) ids
    that a horizontal flip must exchange; ``ignore_index`` (or None) marks pixels of unknown class,
    which no loss, metric or reward counts; ``colors`` gives one RGB triple per class for drawing
    (empty: evenly spaced hues). Whose left "left" is differs by data set (CelebAMask-HQ: the
    subject's; LaPa: the viewer's); a flip only needs the pairs.
    """

    name: str
    classes: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    colors: tuple[tuple[int, int, int], ...] = ()
    ignore_index: int | None = None
    remap: tuple[tuple[int, int], ...] = ()  # (label-map id, class id or ignore id), applied on reading

    def __post_init__(self) -> None:
        n = len(self.classes)
        if not 2 <= n < ID_LIMIT:
            raise UserError(f"label scheme {self.name!r}: needs 2..{ID_LIMIT - 1} classes (background first), got {n}")
        repeated = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if repeated:
            raise UserError(f"label scheme {self.name!r}: class name(s) {repeated} appear more than once")
        paired: set[int] = set()
        for pair in self.flip_pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise UserError(f"label scheme {self.name!r}: flip pair {list(pair)} must name two different classes")
            for i in pair:
                if not 0 <= i < n:
                    raise UserError(f"label scheme {self.name!r}: flip pair {list(pair)} names id {i}, not a class "
                                    f"(ids 0..{n - 1})")
                if i in paired:
                    raise UserError(f"label scheme {self.name!r}: class {self.classes[i]!r} is in two flip pairs")
                paired.add(i)
        if self.ignore_index is not None:
            if not 0 <= self.ignore_index < ID_LIMIT:
                raise UserError(f"label scheme {self.name!r}: ignore_index {self.ignore_index} is outside 0..255 "
                                "(label maps are 8-bit)")
            if self.ignore_index < n:
                raise UserError(f"label scheme {self.name!r}: ignore_index {self.ignore_index} is class "
                                f"{self.classes[self.ignore_index]!r}; pick an id >= {n}, e.g. 255")
        for raw, new in self.remap:
            if new >= n and new != self.ignore_index:
                raise UserError(f"label scheme {self.name!r}: remap {raw} -> {new}: {new} is neither a class id "
                                f"(0..{n - 1}) nor the ignore_index ({self.ignore_index})")
        if self.colors and len(self.colors) != n:
            raise UserError(f"label scheme {self.name!r}: {len(self.colors)} colours for {n} classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def is_label(self, ids: torch.Tensor) -> torch.Tensor:
        """bool, per id: a class id or the ignore id (what a label map may hold after ``remap``)."""
        return (ids < self.num_classes) | (ids == (-1 if self.ignore_index is None else self.ignore_index))

    def read_lut(self) -> torch.Tensor:
        """int64 [256]: the scheme id of each id a label-map file holds (the identity but for ``remap``)."""
        lut = torch.arange(ID_LIMIT)
        for raw, new in self.remap:
            lut[raw] = new
        return lut

    def flip_lut(self) -> torch.Tensor:
        """int64 [256]: the id each label id becomes under a horizontal flip (ids outside the pairs,
        the ignore id among them, stay)."""
        lut = torch.arange(ID_LIMIT)
        for a, b in self.flip_pairs:
            lut[a], lut[b] = b, a
        return lut

    def palette(self) -> torch.Tensor:
        """uint8 [256, 3] drawing colours by label id: the classes', white for the ignore id, black elsewhere."""
        colors = self.colors or tuple(_hues(self.num_classes))
        table = torch.zeros(ID_LIMIT, 3, dtype=torch.uint8)
        table[: self.num_classes] = torch.tensor(colors, dtype=torch.uint8)
        if self.ignore_index is not None:
            table[self.ignore_index] = torch.tensor(IGNORE_COLOR, dtype=torch.uint8)
        return table


def _hues(n: int) -> list[tuple[int, int, int]]:
    """Black background and ``n - 1`` evenly spaced, saturated hues: a palette for schemes without colours."""
    return [(0, 0, 0)] + [tuple(round(255 * v) for v in colorsys.hsv_to_rgb(i / (n - 1), 0.8, 1.0))
                          for i in range(n - 1)]


# The colours are the palette commonly used to draw LaPa label maps.
LAPA = LabelScheme(
    name="lapa",
    classes=("background", "skin", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye",
             "nose", "upper_lip", "inner_mouth", "lower_lip", "hair"),
    flip_pairs=((2, 3), (4, 5)),
    colors=((0, 0, 0), (0, 153, 255), (102, 255, 153), (0, 204, 153), (255, 255, 102), (255, 255, 204),
            (255, 153, 0), (255, 102, 255), (102, 0, 51), (255, 204, 255), (255, 0, 10)),
)

CELEBAMASK_HQ = LabelScheme(
    name="celebamask_hq",
    classes=("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
             "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    flip_pairs=((4, 5), (6, 7), (8, 9)),
    colors=((0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
            (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
            (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0)),
)

SCHEMES = {s.name: s for s in (LAPA, CELEBAMASK_HQ)}
