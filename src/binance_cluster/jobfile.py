"""Job files: the one TOML reader every command's job uses (backtest now; train and live next).

A job file is read once (`read_toml`), then each key is read with a typed reader that names
the file and the dotted key in its one-line `ConfigError` (`Where`): `read_string`,
`read_integer`, `read_number`, `read_time`, `read_interval`, `read_symbols`, `read_field`
(a dataclass field's declared type), `no_unknown` (every key known). `toml_key`/`toml_value`
write a resolved job back as TOML that reads to the same values. Ground floor: imports only
`errors` and `types`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binance_cluster.errors import ConfigError
from binance_cluster.types import INTERVAL_MS, parse_time_ms

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Where:
    """Builds one-line errors naming the job file and a dotted key."""

    def __init__(self, path: str):
        self.path = path

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}" if key else f"{self.path}: {problem}")


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; ConfigError for a missing file or a syntax error (with its line)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: job file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a job file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read job file ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: TOML syntax error: {exc}") from None


def no_unknown(table: dict, known: tuple[str, ...], prefix: str, where: Where) -> None:
    """ConfigError for a key of `table` not in `known` (or `table` not a table)."""
    if not isinstance(table, dict):
        raise where.error(prefix.rstrip("."), "must be a table")
    for key in table:
        if key not in known:
            raise where.error(prefix + key, f"unknown key (known: {', '.join(known)})")


def read_string(value: Any, key: str, where: Where) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise where.error(key, f"must be a non-empty string, not {show_value(value)}")
    return value


def read_integer(value: Any, key: str, where: Where, low: int | None = None) -> int:
    """An integer (not a bool), at least `low` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(key, f"must be an integer, not {show_value(value)}")
    if low is not None and value < low:
        raise where.error(key, f"{value} is below the minimum {low}")
    return value


def read_number(value: Any, key: str, where: Where) -> float:
    """A finite number as float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(key, f"must be a number, not {show_value(value)}")
    if not math.isfinite(value):
        raise where.error(key, f"must be a finite number, not {value}")
    return float(value)


def read_time(value: Any, key: str, where: Where) -> int | None:
    """A UTC time (YYYY-MM-DD, a TOML date-time or ms) as ms, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, _dt.date, _dt.datetime)):
        raise where.error(key, f"must be a UTC time (\"YYYY-MM-DD\", a TOML date-time or "
                               f"milliseconds), not {show_value(value)}")
    try:
        return parse_time_ms(value, key)
    except ConfigError:
        raise where.error(key, f"cannot read {value!r} as a UTC time (use YYYY-MM-DD, "
                               "YYYY-MM-DDTHH:MM or milliseconds)") from None


def read_interval(value: Any, key: str, where: Where) -> str:
    """A Binance interval name (1m, 5m, 1h, 1d, ...)."""
    name = read_string(value, key, where)
    if name not in INTERVAL_MS:
        raise where.error(key, f"unknown interval {name!r} (known: {', '.join(INTERVAL_MS)})")
    return name


def read_symbols(value: Any, where: Where) -> tuple[str, ...]:
    """A list of distinct symbol names, or ("all",)."""
    if value == "all":
        return ("all",)
    if isinstance(value, str):
        raise where.error("symbols", f"must be a list of symbols or \"all\", not {value!r}")
    if not isinstance(value, (list, tuple)) or not value:
        raise where.error("symbols", f"must be a non-empty list of symbols or \"all\", not {show_value(value)}")
    out: list[str] = []
    for s in value:
        if not isinstance(s, str) or not SYMBOL_RE.match(s):
            raise where.error("symbols", f"{s!r} is not a symbol name (upper-case letters and "
                                         "digits, e.g. BTCUSDT)")
        if s in out:
            raise where.error("symbols", f"{s} is listed twice")
        out.append(s)
    return tuple(out)


def show_value(value: Any) -> str:
    """How a bad value is named in an error."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def field_kind(f: dataclasses.Field) -> tuple[str, bool]:
    """('float' | 'int' | 'bool' | 'str', optional) of a Risk/SymbolRules field."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    optional = "None" in text
    for kind in ("bool", "int", "float", "str"):
        if re.search(rf"\b{kind}\b", text):
            if kind == "int" and re.search(r"\bfloat\b", text):
                return "float", optional
            return kind, optional
    return "float", optional


def read_field(value: Any, f: dataclasses.Field, key: str, where: Where) -> Any:
    """A value of the type a dataclass field declares (bool, int, float or str)."""
    kind, optional = field_kind(f)
    if kind == "bool":
        if not isinstance(value, bool):
            raise where.error(key, f"must be true or false, not {show_value(value)}")
        return value
    if kind == "str":
        return read_string(value, key, where)
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return read_integer(value, key, where)
    return read_number(value, key, where)


@dataclass(frozen=True, slots=True)
class TomlTime:
    """A time (ms UTC) to be written as a TOML date-time."""

    ms: int


def toml_key(name: str) -> str:
    """A TOML key, quoted when it is not bare."""
    return name if _BARE_KEY.match(name) else _string_literal(name)


def _string_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def toml_value(value: Any) -> str:
    """A Python value as TOML text (TomlTime as a UTC date-time)."""
    if isinstance(value, TomlTime):
        stamp = _dt.datetime.fromtimestamp(value.ms / 1000, tz=_dt.timezone.utc)
        text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
        if value.ms % 1000:
            text += f".{value.ms % 1000:03d}"
        return text + "Z"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
