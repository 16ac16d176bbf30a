"""The command line: `tinydancer` (a thin shell over the library). Starts without importing numpy or the
stores; each command imports what it uses.

May import: anything (top floor).
"""

from ._main import main

__all__ = [
    "main",
]
