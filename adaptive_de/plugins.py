"""Plug-ins named ``"package.module:attribute"``: rewards, label schemes and models share one importer."""
from __future__ import annotations

import importlib
from typing import Any

from .errors import UserError


def import_object(spec: str, kind: str) -> Any:
    """The object ``attribute`` (dots allowed) of ``package.module`` in ``spec``; a ``UserError`` naming the
    ``kind`` of plug-in when the module fails to import or lacks the attribute."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # a plug-in can fail on import in any way; all of them are the user's to fix
        raise UserError(f"{kind} {spec!r}: cannot import module {module_name!r} ({one_line(e)})") from None
    for part in attr.split("."):
        if not part or not hasattr(obj, part):
            raise UserError(f"{kind} {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def one_line(e: Exception) -> str:
    """An exception as one line (the CLIs print a UserError as a single ``error:`` line)."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
