"""The one way a setting is read and checked: `Reader`, over the merged tables of the embedded
defaults and the site's newsletter.toml, and the environment.

Every check of every table (settings/tables.py, settings/load.py) goes through a Reader, so every
wrong value is the same kind of error: a `ConfigError` with one line that names the file and the
key (or the environment variable) and says what the value must be, in the site's language.

An int is a float too (rate = 2); a bool is never a number (connections = true); numbers must be
finite (TOML allows inf and nan). A value the environment overrides is checked in the file all
the same: the file is wrong whichever wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..i18n import _
from .model import CONFIG_NAME


def kind_name(kind: type) -> str:
    names = {str: _("a string"), int: _("a whole number"), float: _("a number"),
             bool: _("true or false"), list: _("a list"), dict: _("a table")}
    return names[kind]


def show(value: Any) -> str:
    """VALUE as TOML writes it, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return kind_name(type(value))
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Reader:
    """Reads typed values from the merged settings and names the site's newsletter.toml (or, for
    values only the embedded defaults set, the defaults) and the environment in its errors."""

    def __init__(self, site_file: Path, env: Mapping[str, str]) -> None:
        self.file = (str(site_file) if site_file.exists() else
                     _("{file} (defaults)").format(file=CONFIG_NAME))
        self.env = env

    # --- the errors -------------------------------------------------------------------------

    def wrong(self, name: str, kind: type, value: Any, *, var: str | None = None) -> ConfigError:
        """NAME (a dotted key, or the environment variable VAR) is not of KIND."""
        where = var or f"{self.file}: {name}"
        return ConfigError(_("{where} must be {kind}, not {value}").format(
            where=where, kind=kind_name(kind), value=show(value)))

    def at_least(self, value: float, minimum: float, name: str) -> None:
        if value < minimum:
            raise ConfigError(_("{file}: {name} must be at least {minimum}, not {value}").format(
                file=self.file, name=name, minimum=minimum, value=value))

    def longest(self, text: str, maximum: int, name: str) -> None:
        if len(text) > maximum:
            raise ConfigError(_("{file}: {name} is longer than {maximum} characters").format(
                file=self.file, name=name, maximum=maximum))

    def known(self, table: Mapping, where: str, known: Iterable[str]) -> None:
        """A key of TABLE that is not in KNOWN is an error naming it (a typo would be ignored)."""
        known = list(known)
        for key in table:
            if key not in known:
                raise ConfigError(_("{file}: {where}.{key} is not a setting (known: {known})")
                                  .format(file=self.file, where=where, key=key,
                                          known=", ".join(known)))

    # --- the values -------------------------------------------------------------------------

    def value(self, table: Mapping, key: str, kind: type, where: str, default: Any = None,
              *, var: str | None = None) -> Any:
        """TABLE[KEY] (or the environment variable VAR, when set) checked to be of KIND;
        DEFAULT when it is missing."""
        name = f"{where}.{key}" if where else key
        raw = table.get(key, default)
        if raw is not None:
            ok = isinstance(raw, kind) and not (kind in (int, float) and isinstance(raw, bool))
            if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
                raw, ok = float(raw), True
            if ok and kind is float and not math.isfinite(raw):
                ok = False
            if not ok:
                raise self.wrong(name, kind, raw)
        if var and self.env.get(var):
            return self._from_env(var, kind)
        return raw

    def _from_env(self, var: str, kind: type) -> Any:
        text = self.env[var].strip()
        if kind is str:
            return self.env[var]
        try:
            value = kind(text)
        except ValueError:
            raise self.wrong(var, kind, text, var=var) from None
        if kind is float and not math.isfinite(value):
            raise self.wrong(var, kind, text, var=var)
        return value

    def require(self, table: Mapping, key: str, kind: type, where: str) -> Any:
        """TABLE[KEY], which must be there, checked to be of KIND."""
        if key not in table:
            raise ConfigError(_("{file}: missing setting {name}").format(
                file=self.file, name=f"{where}.{key}"))
        return self.value(table, key, kind, where)

    def whole(self, table: Mapping, key: str, where: str, default: int, minimum: int, *,
              var: str | None = None) -> int:
        """TABLE[KEY] as a whole number of at least MINIMUM."""
        value = self.value(table, key, int, where, default, var=var)
        self.at_least(value, minimum, f"{where}.{key}")
        return value

    def text(self, table: Mapping, key: str, where: str, default: str = "", *,
             var: str | None = None) -> str:
        """TABLE[KEY] as a string, stripped."""
        return self.value(table, key, str, where, default, var=var).strip()

    def texts(self, table: Mapping, key: str, where: str, default: list[str]) -> list[str]:
        """TABLE[KEY] as a list of strings."""
        value = self.value(table, key, list, where, default)
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(_("{file}: {name} must be a list of strings, not {value}").format(
                file=self.file, name=f"{where}.{key}", value=show(value)))
        return value

    def roles(self, table: Mapping, key: str, where: str, default: list[str],
              roles: Mapping[str, str]) -> tuple[str, ...]:
        """TABLE[KEY], a list of role slugs of [roles]. The default leaves out the roles a site
        with its own [roles] lacks; the site's own list must name roles it has."""
        value = self.texts(table, key, where, default)
        if value == default:
            return tuple(v for v in value if v in roles)
        unknown = [v for v in value if v not in roles]
        if unknown:
            raise ConfigError(_("{file}: {name}: unknown role “{role}” (roles: {roles})").format(
                file=self.file, name=f"{where}.{key}", role=unknown[0], roles=", ".join(roles)))
        return tuple(value)

    def table(self, data: Mapping, key: str, where: str = "") -> dict:
        """The sub-table DATA[KEY] ({} if absent)."""
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            raise self.wrong(f"{where}.{key}" if where else f"[{key}]", dict, raw)
        return raw

    def strings(self, data: Mapping, key: str) -> dict[str, str]:
        """A table of names to strings: [roles], [segments]."""
        table = self.table(data, key)
        for name, value in table.items():
            if not isinstance(value, str):
                raise self.wrong(f"[{key}] {name}", str, value)
        return dict(table)
