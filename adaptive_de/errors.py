"""User-facing errors and the CLI wrapper that turns them into one clear line on stderr."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A mistake in the user's input (missing folder, bad value, corrupt file...).

    CLIs print its message as one line on stderr and exit with status 2, without a traceback.
    """


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; a ``UserError`` becomes ``error: <message>`` on stderr and exit code 2."""
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ``UserError``s, so ``run_cli`` prints them as one ``error:`` line."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)
