"""Face-parsing data sets named by a spec string: ``synth[:key=value,...]``, ``lapa:DIR``, ``celebamask:DIR``,
``folder:DIR[,key=value,...]``.

``load(spec, split, size=...)`` decodes a whole split into uint8 tensors; ``FaceParsingFolder`` is a
``torch.utils.data.Dataset`` over the same files that decodes one item at a time.

Memory: ``load`` keeps the split in memory. LaPa train (18,176 images) at 112 px holds
18176*3*112*112 B ≈ 684 MB of images plus 18176*112*112 B ≈ 228 MB of labels; at 512 px that becomes
18176*3*512*512 B ≈ 14.3 GB plus 18176*512*512 B ≈ 4.8 GB. When that does not fit, iterate a
``FaceParsingFolder`` through a ``DataLoader`` with workers instead.

Layouts:

* ``lapa:DIR`` — ``DIR/{train,val,test}/images/<stem>.{jpg,png}`` with ``DIR/<split>/labels/<stem>.png``
  (single-channel class ids 0-10); a ``landmarks`` folder is ignored.
* ``celebamask:DIR`` — the official release (``CelebA-HQ-img/<id>.jpg`` and per-part masks
  ``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png``, split train/val/test by CelebA's
  ``list_eval_partition.txt`` and ``CelebA-HQ-to-CelebA-mapping.txt`` placed in DIR, or ``all``), or a
  flat folder of ``<id>.jpg`` images and ``<id>.png`` merged label maps (one split, ``all``).
* ``folder:DIR`` — any label scheme, declared in ``DIR/scheme.yaml`` (see ``adaptive_de.data.schemes``)
  or by the option ``scheme=FILE|module:object|lapa|celebamask_hq``. Either split folders
  ``DIR/{train,val,test}/{images,labels}`` or one flat ``DIR/{images,labels}``, split by the options
  ``train=``, ``val=``, ``test=``: each a ratio (``0.8``), a name pattern (``frontal02_test_*``) or
  ``@FILE`` (a list of names, one per line). Patterns and lists take their names first; the ratios
  share the rest, shuffled by ``seed=`` (default 0). ``include=PATTERN`` keeps only matching names
  first. Without split options a flat folder is split 0.8 / 0.1 / 0.1. E.g.
  ``folder:faces,include=frontal02_*,test=frontal02_test_*,train=0.75,val=0.25``.
* ``synth`` — the procedural benchmark, rendered on first use into a cache folder
  (``$ADAPTIVE_DE_CACHE`` or ``~/.cache/adaptive_de``) and reused afterwards. Options: ``size``,
  ``train``, ``val``, ``test`` (face counts), ``seed``, ``shift``, e.g. ``synth:shift=0.5,seed=1``.
  ``wide_until=F`` (in [0, 1), default 0) makes the train split a stream that drifts: for the first
  fraction F of every training run's steps its faces come under val/test's nuisances, then under
  train's own (the same faces, index for index), so the recipe that suits the data changes mid-run.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm import tqdm

from adaptive_de.data.labels import CELEBAMASK_HQ, ID_LIMIT, LAPA, LabelScheme
from adaptive_de.data.schemes import SCHEME_FILE, load_scheme
from adaptive_de.errors import UserError
from adaptive_de.files import atomic_path

SPEC_FORMS = "synth[:key=value,...], lapa:DIR, celebamask:DIR, folder:DIR[,key=value,...]"
FOLDER_OPTIONS = ("scheme", "include", "seed", "train", "val", "test")
DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LAPA_SPLITS = ("train", "val", "test")
SYNTH_DEFAULTS: dict[str, int | float] = {"size": 64, "train": 2000, "val": 500, "test": 1000, "seed": 0,
                                          "shift": 1.0, "wide_until": 0.0}
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_HQ_MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
_PARTITION_SPLITS = {"0": "train", "1": "val", "2": "test"}
_LABEL_MODES = ("L", "P", "1", "I", "I;16")


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample: its image and either a merged label map or per-part masks.

    ``parts`` pairs each mask with the class id it paints, in painting order (a later part wins).
    """

    name: str
    image: Path
    label: Path | None = None
    parts: tuple[tuple[int, Path], ...] = ()


@dataclass
class FaceParsingSet:
    """A split held in memory: ``images`` uint8 [N,3,H,W], ``labels`` uint8 [N,H,W] class ids of ``scheme``.

    ``names`` are the file stems. Indexing gives ``(image, label)``, so it also serves as a Dataset.

    A drifting training stream (``synth``'s ``wide_until``): for the first ``early_until`` fraction of a training
    run's steps the trainer draws from ``early`` instead, the same N faces, index for index, seen under other
    nuisances, so a sampler's per-image weights carry across the switch.
    """

    images: torch.Tensor
    labels: torch.Tensor
    scheme: LabelScheme
    names: list[str]
    early: FaceParsingSet | None = None
    early_until: float = 0.0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class FaceParsingFolder(Dataset):
    """A LaPa or CelebAMask-HQ split on disk that decodes each ``(image, label)`` on access.

    Items are uint8 [3,H,W] and uint8 [H,W]. With ``size`` both are resized to ``size`` x ``size``
    (image bilinear, antialiased; label nearest); without it they keep the label map's size.
    """

    def __init__(self, spec: str, split: str, *, size: int | None = None) -> None:
        kind, arg = parse_spec(spec)
        if kind == "synth":
            raise UserError("'synth' is generated in memory: use load() or open_dataset() for it")
        if size is not None and size < 1:
            raise UserError(f"size must be positive, got {size}")
        folder, options = folder_options(arg) if kind == "folder" else (arg, {})
        root = Path(folder).expanduser()
        _require_dir(root)
        self.scheme, self.samples = _LISTERS[kind](root, split, **options)
        self.size = size
        # CelebAMask-HQ pairs 1024 px images with 512 px masks by design; the others' must match
        self.same_size = kind != "celebamask"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return decode_sample(self.samples[index], self.scheme, size=self.size, same_size=self.same_size)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a data set spec into its kind (``synth``, ``lapa``, ``celebamask``, ``folder``) and argument."""
    kind, _, arg = spec.partition(":")
    if kind not in ("synth", "lapa", "celebamask", "folder"):
        raise UserError(f"unknown data set spec {spec!r}; valid: {SPEC_FORMS}")
    if kind != "synth" and not arg:
        raise UserError(f"data set spec {spec!r} needs a folder: {kind}:DIR")
    return kind, arg


def load(spec: str, split: str, *, size: int | None = None) -> FaceParsingSet:
    """Decode a whole split of the data set named by ``spec`` into memory.

    ``size`` resizes every sample to ``size`` x ``size`` (for ``synth`` it sets the render size, over
    the spec's ``size=``). Without it all samples of a folder must share one size.
    """
    kind, arg = parse_spec(spec)
    if kind == "synth":
        return _load_synth(arg, split, size)
    return _read_all(FaceParsingFolder(spec, split, size=size), split)


def open_dataset(spec: str, split: str, *, size: int | None = None) -> FaceParsingSet | FaceParsingFolder:
    """A Dataset of ``(image, label)`` for ``spec``: lazy for folders, in memory for ``synth``."""
    if parse_spec(spec)[0] == "synth":
        return load(spec, split, size=size)
    return FaceParsingFolder(spec, split, size=size)


# ---------------------------------------------------------------- listing files

def _require_dir(path: Path) -> None:
    if not path.is_dir():
        raise UserError(f"folder not found: {path}")


def _check_split(split: str, valid: tuple[str, ...], root: Path) -> None:
    if split not in valid:
        raise UserError(f"unknown split {split!r} for {root}; valid: {', '.join(valid)}")


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in files:
            raise UserError(f"two files for one sample: {files[path.stem]} and {path}")
        files[path.stem] = path
    return files


def _sort_key(name: str) -> tuple[bool, int, str]:
    # numeric ids (CelebAMask-HQ's 0..29999) in numeric order, other names alphabetically
    return (not name.isdigit(), int(name) if name.isdigit() else 0, name)


def _pair(images: dict[str, Path], labels: dict[str, Path], image_dir: Path, label_dir: Path) -> list[SampleFiles]:
    if not images:
        raise UserError(f"no images (.jpg/.png) in {image_dir}")
    unlabelled = sorted(images.keys() - labels.keys(), key=_sort_key)
    if unlabelled:
        name = unlabelled[0]
        raise UserError(f"image without a label: {images[name]} (expected {label_dir / name}.png)")
    orphans = sorted(labels.keys() - images.keys(), key=_sort_key)
    if orphans:
        name = orphans[0]
        raise UserError(f"label without an image: {labels[name]} (no {name}.jpg/.png in {image_dir})")
    return [SampleFiles(name, images[name], label=labels[name]) for name in sorted(images, key=_sort_key)]


def _list_pairs(folder: Path) -> list[SampleFiles]:
    """The samples of ``folder/images`` and ``folder/labels``, paired by file stem."""
    image_dir, label_dir = folder / "images", folder / "labels"
    _require_dir(image_dir)
    _require_dir(label_dir)
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES)
    return _pair(images, _files_by_stem(label_dir, (".png",)), image_dir, label_dir)


def _list_lapa(root: Path, split: str) -> tuple[LabelScheme, list[SampleFiles]]:
    _check_split(split, LAPA_SPLITS, root)
    return LAPA, _list_pairs(root / split)


def folder_options(arg: str) -> tuple[str, dict[str, str]]:
    """``DIR,key=value,...`` → ``(DIR, {key: value})`` for a ``folder:`` spec."""
    folder, *items = arg.split(",")
    options: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in FOLDER_OPTIONS or not eq or not value.strip():
            raise UserError(f"bad folder option {item!r}; expected key=value with key in {', '.join(FOLDER_OPTIONS)}")
        if key in options:
            raise UserError(f"folder option {key!r} given twice")
        options[key] = value.strip()
    return folder, options


def _list_folder(root: Path, split: str, *, scheme: str | None = None, include: str = "*", seed: str = "0",
                 **splits: str) -> tuple[LabelScheme, list[SampleFiles]]:
    if scheme is None and not (root / SCHEME_FILE).is_file():
        raise UserError(f"{root} has no {SCHEME_FILE}: write one (classes, flip_pairs, ignore_index) or pass "
                        "scheme=FILE|module:object|lapa|celebamask_hq")
    label_scheme = load_scheme(scheme or root / SCHEME_FILE, default_name=root.name)
    if any((root / s).is_dir() for s in LAPA_SPLITS):  # split folders: the layout decides
        if splits or include != "*":
            raise UserError(f"{root} has split folders ({', '.join(LAPA_SPLITS)}); the options train/val/test/include "
                            "split a flat folder (DIR/images, DIR/labels)")
        _check_split(split, LAPA_SPLITS, root)
        return label_scheme, _list_pairs(root / split)
    _check_split(split, (*LAPA_SPLITS, "all"), root)
    samples = [s for s in _list_pairs(root) if fnmatch.fnmatchcase(s.name, include)]
    if not samples:
        raise UserError(f"no image of {root / 'images'} matches include={include}")
    if split == "all":
        return label_scheme, samples
    try:
        seed_value = int(seed)
    except ValueError:
        raise UserError(f"folder option seed={seed!r} is not an integer") from None
    names = assign_splits([s.name for s in samples], splits or DEFAULT_RATIOS, seed_value, root)[split]
    if not names:
        raise UserError(f"split {split!r} of {root} has no images; give {split}=RATIO, {split}=PATTERN or "
                        f"{split}=@FILE")
    chosen = set(names)
    return label_scheme, [s for s in samples if s.name in chosen]


def assign_splits(names: list[str], splits: dict[str, str | float], seed: int, root: Path) -> dict[str, list[str]]:
    """Names per split: patterns and ``@FILE`` lists take theirs first, then the ratios share the rest.

    The rest is shuffled by ``seed`` and cut by the ratios in train, val, test order; ratios summing
    to less than 1 leave names unused. Deterministic for a list of names, seed and options.
    """
    out: dict[str, list[str]] = {s: [] for s in LAPA_SPLITS}
    owner: dict[str, str] = {}
    ratios: dict[str, float] = {}
    for split, value in splits.items():
        try:
            ratios[split] = float(value)
            continue
        except ValueError:
            pass
        if value.startswith("@"):
            wanted = set(_read_names(Path(value[1:]).expanduser()))
            chosen = [n for n in names if n in wanted]
        else:
            chosen = [n for n in names if fnmatch.fnmatchcase(n, value)]
        if not chosen:
            raise UserError(f"{split}={value} selects no image of {root}")
        for name in chosen:
            if name in owner:
                raise UserError(f"image {name!r} is selected by both {owner[name]} and {split}")
            owner[name] = split
        out[split] = chosen
    if any(not 0 < r <= 1 for r in ratios.values()) or sum(ratios.values()) > 1 + 1e-9:
        raise UserError(f"split ratios must lie in (0, 1] and sum to at most 1, got {ratios}")
    rest = [n for n in names if n not in owner]
    order = np.random.default_rng(seed).permutation(len(rest))
    start = 0.0
    for split in (s for s in LAPA_SPLITS if s in ratios):
        lo, hi = round(start * len(rest)), round((start + ratios[split]) * len(rest))
        out[split] = sorted((rest[i] for i in order[lo:hi]), key=_sort_key)
        start += ratios[split]
    return out


def _read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"split list not found: {path}")
    return [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]


def _list_celebamask(root: Path, split: str) -> tuple[LabelScheme, list[SampleFiles]]:
    if (root / "CelebA-HQ-img").is_dir():
        return CELEBAMASK_HQ, _list_celebamask_release(root, split)
    _check_split(split, ("all",), root)
    images = _files_by_stem(root, (".jpg", ".jpeg"))
    return CELEBAMASK_HQ, _pair(images, _files_by_stem(root, (".png",)), root, root)


def _part_masks(anno_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """Image id → [(class id, mask path)] sorted in the official painting order."""
    class_of = {name: i for i, name in enumerate(CELEBAMASK_HQ.classes) if i > 0}
    parts: dict[str, list[tuple[int, Path]]] = {}
    for path in anno_dir.glob("*/*.png"):
        number, _, part = path.stem.partition("_")
        if not number.isdigit() or part not in class_of:
            raise UserError(f"unexpected mask file {path}: expected <id:05d>_<part>.png with a part in "
                            f"{', '.join(class_of)}")
        parts.setdefault(str(int(number)), []).append((class_of[part], path))
    for masks in parts.values():
        masks.sort()
    return parts


def _list_celebamask_release(root: Path, split: str) -> list[SampleFiles]:
    _check_split(split, ("train", "val", "test", "all"), root)
    image_dir, anno_dir = root / "CelebA-HQ-img", root / "CelebAMask-HQ-mask-anno"
    _require_dir(anno_dir)
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES)
    if not images:
        raise UserError(f"no images (.jpg/.png) in {image_dir}")
    parts = _part_masks(anno_dir)
    orphans = sorted(parts.keys() - images.keys(), key=_sort_key)
    if orphans:
        raise UserError(f"label without an image: {parts[orphans[0]][0][1]} (no {orphans[0]}.jpg in {image_dir})")
    names = sorted(images, key=_sort_key)
    if split != "all":
        split_of = _celebamask_partition(root)
        for name in names:
            if name not in split_of:
                raise UserError(f"image {images[name]} is not listed in {root / CELEBA_HQ_MAPPING}")
        names = [name for name in names if split_of[name] == split]
        if not names:
            raise UserError(f"split {split!r} of {root} has no images")
    for name in names:
        if name not in parts:
            raise UserError(f"image without a label: {images[name]} (no masks {name:0>5}_*.png in {anno_dir})")
    return [SampleFiles(name, images[name], parts=tuple(parts[name])) for name in names]


def _table(path: Path, columns: int) -> list[list[str]]:
    """The rows of a whitespace-separated text file, header lines (not starting with a digit) skipped."""
    if not path.is_file():
        raise UserError(f"file not found: {path} (needed for the train/val/test split; use split 'all' without it)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or not fields[0][0].isdigit():
            continue
        if len(fields) < columns:
            raise UserError(f"{path}:{number}: expected {columns} columns, got {line!r}")
        rows.append(fields)
    return rows


def _celebamask_partition(root: Path) -> dict[str, str]:
    """CelebA-HQ image id → split name, via the CelebA file each id was taken from."""
    partition_file = root / CELEBA_PARTITION
    partition = {fields[0]: fields[1] for fields in _table(partition_file, 2)}
    split_of = {}
    for idx, _, orig_file in _table(root / CELEBA_HQ_MAPPING, 3):
        code = partition.get(orig_file)
        if code not in _PARTITION_SPLITS:
            raise UserError(f"{partition_file}: no valid 0/1/2 entry for {orig_file} (CelebA-HQ image {idx})")
        split_of[idx] = _PARTITION_SPLITS[code]
    return split_of


_LISTERS: dict[str, Callable[..., tuple[LabelScheme, list[SampleFiles]]]] = {
    "lapa": _list_lapa, "celebamask": _list_celebamask, "folder": _list_folder,
}


# ---------------------------------------------------------------- decoding

def _open_image(path: Path) -> Image.Image:
    """Fully decode ``path``; an unreadable, truncated or non-image file is a UserError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except UnidentifiedImageError:
        raise UserError(f"cannot read image {path}: not an image file PIL recognises") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {e}") from e


def _label_ids(path: Path, scheme: LabelScheme) -> np.ndarray:
    """The scheme ids of a label-map file: its ids through ``scheme.remap``, each a class or the ignore id."""
    image = _open_image(path)
    if image.mode not in _LABEL_MODES:
        raise UserError(f"label map {path} must be single-channel class ids, got mode {image.mode}")
    ids = torch.from_numpy(np.array(image).astype(np.int64))
    valid = (ids >= 0) & (ids < ID_LIMIT)
    if bool(valid.all()):
        ids = scheme.read_lut()[ids]
        valid = scheme.is_label(ids)
    bad = ids[~valid].unique()
    if bad.numel():
        ignore = "" if scheme.ignore_index is None else f", ignore id {scheme.ignore_index}"
        raise UserError(f"label map {path} has ids {bad[:8].tolist()} outside {scheme.name} "
                        f"(0..{scheme.num_classes - 1}{ignore})")
    return ids.numpy().astype(np.uint8)


def _merge_parts(sample: SampleFiles) -> np.ndarray:
    """Paint the per-part masks (nonzero = part) in order, as the official CelebAMask-HQ script does."""
    merged: np.ndarray | None = None
    for class_id, path in sample.parts:
        mask = np.array(_open_image(path).convert("L")) != 0
        if merged is None:
            merged = np.zeros(mask.shape, dtype=np.uint8)
        elif mask.shape != merged.shape:
            raise UserError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, other masks of image "
                            f"{sample.name} are {merged.shape[1]}x{merged.shape[0]}")
        merged[mask] = class_id
    return merged


def decode_sample(sample: SampleFiles, scheme: LabelScheme, *, size: int | None = None,
                  same_size: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one sample to uint8 image [3,H,W] and label [H,W], resized to ``size`` if given.

    ``same_size`` makes an image whose size differs from its label map an error.
    """
    image = _open_image(sample.image).convert("RGB")
    ids = _label_ids(sample.label, scheme) if sample.label is not None else _merge_parts(sample)
    label = Image.fromarray(ids)
    if same_size and image.size != label.size:
        where = sample.label or sample.parts[0][1]
        raise UserError(f"image {sample.image} is {image.width}x{image.height} but its label {where} is "
                        f"{label.width}x{label.height}")
    target = (size, size) if size else label.size
    if image.size != target:
        # Pillow widens the bilinear filter when shrinking, i.e. the resize is antialiased
        image = image.resize(target, Image.Resampling.BILINEAR)
    if label.size != target:
        label = label.resize(target, Image.Resampling.NEAREST)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous(), torch.from_numpy(np.array(label))


def _read_all(folder: FaceParsingFolder, split: str) -> FaceParsingSet:
    n = len(folder)
    images = labels = None
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        decoded = pool.map(folder.__getitem__, range(n))
        for i, (image, label) in enumerate(tqdm(decoded, total=n, desc=f"read {split}", unit="img", disable=None)):
            if images is None:
                images = torch.empty((n, *image.shape), dtype=torch.uint8)
                labels = torch.empty((n, *label.shape), dtype=torch.uint8)
            elif image.shape != images.shape[1:]:
                raise UserError(f"{folder.samples[i].image} is {image.shape[2]}x{image.shape[1]} but "
                                f"{folder.samples[0].image} is {images.shape[3]}x{images.shape[2]}; "
                                "pass a size to resize them")
            images[i], labels[i] = image, label
    finally:
        # on an error, do not decode the rest of the split before raising
        pool.shutdown(cancel_futures=True)
    return FaceParsingSet(images, labels, folder.scheme, folder.names)


# ---------------------------------------------------------------- synthetic

def _synth_params(arg: str, size: int | None) -> dict[str, int | float]:
    params = dict(SYNTH_DEFAULTS)
    for item in filter(None, (s.strip() for s in arg.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in params or not eq:
            raise UserError(f"bad synth option {item!r}; expected key=value with key in {', '.join(params)}")
        kind = type(SYNTH_DEFAULTS[key])
        try:
            params[key] = kind(value)
        except ValueError:
            raise UserError(f"synth option {key}={value!r} is not {kind.__name__}") from None
    if size is not None:
        params["size"] = size
    return params


def cache_root() -> Path:
    """Where generated data sets are kept: ``$ADAPTIVE_DE_CACHE`` or ``~/.cache/adaptive_de``."""
    return Path(os.environ.get("ADAPTIVE_DE_CACHE") or Path.home() / ".cache" / "adaptive_de")


def _load_synth(arg: str, split: str, size: int | None) -> FaceParsingSet:
    # imported here, not at the top: the package __init__ imports this module, and a top-level import
    # would load synth before ``python -m adaptive_de.data.synth`` runs it (runpy then warns)
    from adaptive_de.data import synth, synthetic

    params = _synth_params(arg, size)
    synth.check_params(size=int(params["size"]), counts={s: int(params[s]) for s in synth.SPLITS},
                       shift=float(params["shift"]))
    wide_until = float(params.pop("wide_until"))
    if not 0.0 <= wide_until < 1.0:
        raise UserError(f"synth option wide_until must be in [0, 1), got {wide_until}")
    _check_split(split, synth.SPLITS, Path("synth"))
    if params[split] == 0:
        raise UserError(f"synth split {split!r} has no images ({split}=0)")
    # the generator's source is part of the key, so a changed generator never serves stale faces; wide_until is
    # not: it only says when the trainer switches between two renderings that do not depend on it
    key = json.dumps({**params, "generator": hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()},
                     sort_keys=True)
    folder = cache_root() / f"synth-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    render = dict(size=int(params["size"]), seed=int(params["seed"]), split=split, shift=float(params["shift"]))
    images, labels = _cached(folder / f"{split}.pt", lambda: synth.render_split(int(params[split]), **render))
    names = [synth.file_stem(i) for i in range(len(images))]
    if split != "train" or wide_until == 0.0:
        return FaceParsingSet(images, labels, LAPA, names)
    wide = synthetic.nuisances_for("test", float(params["shift"]))  # val and test share their ranges
    early = _cached(folder / "train-wide.pt", lambda: synth.render_split(int(params[split]), **render, nuisances=wide))
    return FaceParsingSet(images, labels, LAPA, names, early=FaceParsingSet(*early, LAPA, names),
                          early_until=wide_until)


def _cached(path: Path, render: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``render()``'s images and labels, kept in ``path`` after the first call (written whole or not at all)."""
    if path.is_file():
        data = torch.load(path, weights_only=True)
        return data["images"], data["labels"]
    images, labels = render()
    try:
        with atomic_path(path) as tmp:
            torch.save({"images": images, "labels": labels}, tmp)
    except OSError as e:
        raise UserError(f"cannot write the data cache {path}: {e.strerror} (set ADAPTIVE_DE_CACHE)") from e
    return images, labels
