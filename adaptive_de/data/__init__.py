"""Face-parsing data: label schemes, the synthetic benchmark and LaPa / CelebAMask-HQ readers."""
from adaptive_de.data.folders import FaceParsingFolder, FaceParsingSet, load, open_dataset

__all__ = ["FaceParsingFolder", "FaceParsingSet", "load", "open_dataset"]
