"""User label schemes: a ``scheme.yaml`` file, a ``module:object`` spec, or a built-in scheme's name.

A scheme file declares what the ids of a folder's label maps mean::

    name: fasseg                  # optional (default: the folder's name)
    classes: [background, skin, hair, eyes, nose, mouth]   # background first; or {0: background, 1: skin, ...}
    flip_pairs: [[2, 3]]          # class ids (or names) a horizontal flip swaps; [] when nothing does
    ignore_index: 255             # label id of unknown pixels, not scored; null when every pixel has a class
    remap: {7: 1, 9: 255}         # optional: label-map id -> class id (or the ignore id), applied on reading
    colors: [[0, 0, 0], ...]      # optional: one RGB triple per class (default: evenly spaced hues)

Every mistake is a ``UserError`` naming the file and the key: an unknown key, a repeated id, a flip
pair naming no class, an ignore id that is also a class, a remap to an id outside the scheme.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adaptive_de.data.labels import ID_LIMIT, SCHEMES, LabelScheme
from adaptive_de.errors import UserError
from adaptive_de.plugins import import_object

SCHEME_FILE = "scheme.yaml"
KEYS = ("name", "classes", "flip_pairs", "ignore_index", "remap", "colors")


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a repeated mapping key (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise UserError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_scheme(spec: str | Path, *, default_name: str = "custom") -> LabelScheme:
    """The scheme named by ``spec``: a built-in name (``lapa``, ``celebamask_hq``), ``module:object``
    (a ``LabelScheme`` or a dict with the scheme file's keys) or the path of a scheme file."""
    text = str(spec)
    if text in SCHEMES:
        return SCHEMES[text]
    if ":" in text and not Path(text).exists():
        return _import_scheme(text, default_name)
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(f"scheme file not found: {path} (write one, or name a scheme: {', '.join(SCHEMES)} "
                        "or module:object)")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        return scheme_from_dict(data, default_name=default_name)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def _import_scheme(spec: str, default_name: str) -> LabelScheme:
    obj = import_object(spec, "scheme")
    if isinstance(obj, LabelScheme):
        return obj
    if isinstance(obj, dict):
        try:
            return scheme_from_dict(obj, default_name=default_name)
        except UserError as e:
            raise UserError(f"scheme {spec!r}: {e}") from None
    raise UserError(f"scheme {spec!r} is a {type(obj).__name__}; expected a LabelScheme or a dict")


def scheme_from_dict(data: Any, *, default_name: str = "custom") -> LabelScheme:
    """A ``LabelScheme`` from the keys of a scheme file (see the module docstring)."""
    if not isinstance(data, dict):
        raise UserError(f"a scheme is a mapping with keys {', '.join(KEYS)}; got {type(data).__name__}")
    unknown = sorted(map(str, data.keys() - set(KEYS)))
    if unknown:
        raise UserError(f"unknown key(s) {unknown}; valid: {', '.join(KEYS)}")
    if "classes" not in data:
        raise UserError("missing key 'classes' (class names, background first)")
    classes = _classes(data["classes"])
    ignore = data.get("ignore_index")
    if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)):
        raise UserError(f"ignore_index must be an integer id or null, got {ignore!r}")
    pairs = tuple(tuple(_class_id(item, classes, "flip_pairs") for item in _pair(p))
                  for p in _list(data.get("flip_pairs") or [], "flip_pairs"))
    colors = tuple(tuple(_rgb(c)) for c in _list(data.get("colors") or [], "colors"))
    remap = _remap(data.get("remap") or {})
    return LabelScheme(name=str(data.get("name") or default_name), classes=classes, flip_pairs=pairs,
                       colors=colors, ignore_index=ignore, remap=remap)


def _list(value: Any, key: str) -> list:
    if not isinstance(value, list):
        raise UserError(f"{key} must be a list, got {value!r}")
    return value


def _classes(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict):  # {id: name}: the ids must be exactly 0..N-1
        ids = sorted(value)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or ids != list(range(len(ids))):
            raise UserError(f"classes as a mapping needs the ids 0..{len(ids) - 1} once each, got {ids}")
        value = [value[i] for i in ids]
    names = _list(value, "classes")
    if not all(isinstance(n, str) and n for n in names):
        raise UserError(f"classes must be non-empty names, got {names}")
    return tuple(names)


def _pair(value: Any) -> list:
    if not isinstance(value, list) or len(value) != 2:
        raise UserError(f"each flip pair is two classes, got {value!r}")
    return value


def _class_id(item: Any, classes: tuple[str, ...], key: str) -> int:
    if isinstance(item, str):
        if item not in classes:
            raise UserError(f"{key}: unknown class {item!r}; classes: {', '.join(classes)}")
        return classes.index(item)
    if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < len(classes):
        raise UserError(f"{key}: {item!r} is not a class id (0..{len(classes) - 1}) or name")
    return item


def _rgb(value: Any) -> list[int]:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        raise UserError(f"colors: each colour is [r, g, b] in 0..255, got {value!r}")
    return value


def _remap(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, dict):
        raise UserError(f"remap must map label-map ids to class ids, got {value!r}")
    pairs = []
    for raw, new in value.items():
        for v in (raw, new):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < ID_LIMIT:
                raise UserError(f"remap: {raw!r} -> {new!r}: ids are integers in 0..255")
        pairs.append((raw, new))
    return tuple(sorted(pairs))
