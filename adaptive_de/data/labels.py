"""Label schemes of the face-parsing data sets (class ids, names, left/right pairs, colours)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelScheme:
    """A face-parsing label set.

    ``classes[i]`` names class id ``i``; ``flip_pairs`` lists the (left, right) ids that a
    horizontal flip must exchange; ``colors`` gives one RGB triple per class for drawing.
    "Left" is the subject's left, as in LaPa and CelebAMask-HQ.
    """

    name: str
    classes: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    colors: tuple[tuple[int, int, int], ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def flip_lut(self) -> torch.Tensor:
        """int64 [num_classes]: the id each class becomes under a horizontal flip."""
        lut = torch.arange(self.num_classes)
        for a, b in self.flip_pairs:
            lut[a], lut[b] = b, a
        return lut

    def palette(self) -> torch.Tensor:
        """uint8 [num_classes, 3] drawing colours."""
        return torch.tensor(self.colors, dtype=torch.uint8)


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
