"""``python -m aionas.cli``: the ``aionas`` command, for when its script is not on ``PATH``."""

from __future__ import annotations

import sys

from ._main import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
