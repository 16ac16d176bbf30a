"""Every failure of a command as one line: ours (:class:`TinydancerError`), DuckDB's (including ours raised inside a
UDF, which DuckDB keeps only as text), Arrow's, polars', the operating system's. ``--debug`` shows the traceback."""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

#: DuckDB's wrapper around an exception raised inside a Python UDF; the text after it is ours.
_UDF_PREFIX = "Python exception occurred while executing the UDF: "
#: Our exception classes as DuckDB prints them before the message ("InvalidArgument: invalid ...").
_OUR_CLASSES = re.compile(r"^(InvalidArgument|NotFound|StoreError|ModelError|TinydancerError): ")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line: the text of our error inside a DuckDB UDF error, else the first line
    of the message (DuckDB's "LINE 1: ..." caret drawing dropped), with the class name when the text alone is
    unclear."""
    from tinydancer_duck.errors import TinydancerError

    text = str(exc)
    if _UDF_PREFIX in text:
        text = _OUR_CLASSES.sub("", text.split(_UDF_PREFIX, 1)[1].strip())
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if isinstance(exc, TinydancerError) or _UDF_PREFIX in str(exc):
        return first
    module = type(exc).__module__.split(".")[0].lstrip("_")
    if module == "duckdb":  # its messages already say what kind: "Parser Error: ...", "IO Error: ..."
        return first
    name = type(exc).__name__ if module == "builtins" else f"{module} {type(exc).__name__}"
    return f"{name}: {first}" if first else name


def is_wrapped_udf_error(exc: BaseException) -> bool:
    """True when a DuckDB error carries an exception raised inside one of our UDFs (its text names the argument)."""
    return _UDF_PREFIX in str(exc)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: "tinydancer demo: argument --rows: invalid int value: 'x' (see
    tinydancer demo --help)", exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
