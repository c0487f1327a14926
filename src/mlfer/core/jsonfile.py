"""Small JSON files that change a model's answers (``thresholds.json``, ``framing.json``, the
package record), read with limits: a size cap, no duplicate keys, no numbers that cannot be
numbers (``NaN``, 40-digit integers), no nesting deep enough to exhaust the stack. Every
problem is one :class:`MlferError` line naming the file, and the line where the parser knows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlfer.core.errors import MlferError

#: Largest JSON file of a model folder, in bytes: the real ones are under 2 KB.
MAX_JSON_BYTES = 1 << 20
#: Most digits of an integer (a count or a coordinate never needs more).
MAX_INTEGER_DIGITS = 18


class _Refused(ValueError):
    """A value the parser met and mlfer does not accept (raised from inside ``json.loads``)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _Refused(f"the key {repeated[0]!r} appears more than once")
    return dict(pairs)


def _bounded_integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _finite_number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:40]} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise _Refused(f"{text} is not a number JSON allows")


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The value in a JSON file, read within the limits above; any problem names ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise MlferError(f"{size:,} bytes is more than a file of this kind may hold ({max_bytes:,})", path=path)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise MlferError(f"cannot read the file ({error.strerror or error})", path=path) from error
    if len(data) > max_bytes:  # grew since stat
        raise MlferError(f"more than {max_bytes:,} bytes", path=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MlferError(f"not UTF-8 text (byte {error.start})", path=path) from error
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_bounded_integer,
            parse_float=_finite_number,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as error:
        raise MlferError(f"not valid JSON: {error.msg} (column {error.colno})", path=path, line=error.lineno) from None
    except _Refused as error:
        raise MlferError(f"not accepted: {error}", path=path) from None
    except RecursionError:
        raise MlferError("not accepted: nested too deeply", path=path) from None
