"""Settings objects: one frozen dataclass per config section, the single source of its defaults and checks.

Each paper's ``settings`` module subclasses :class:`Section` with one field
per key of its config section (nested sections are nested :class:`Section`
fields). The same object serves three places:

- at parse time, :func:`conceptscope.workflow.check_config` builds it from the
  section (:meth:`Section.from_config`: unknown keys and bad values raise
  :class:`ConfigError` naming the key) and calls :meth:`Section.check` for the
  checks that need the rest of the config (models, layers, channel counts);
- each rule passes its whole config section as ``params.settings``, and the
  job builds the object again, so the library never repeats a default;
- a test asserts that the JSON schema's defaults equal the dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

__all__ = ["ConfigError", "Section"]


class ConfigError(ValueError):
    """The configuration is valid against the schema but inconsistent."""


@dataclasses.dataclass(frozen=True)
class Section:
    """Base class of a config section's settings (a frozen dataclass; subclasses add fields)."""

    KEY: ClassVar[str] = ""  # the section's key path in the config, e.g. "neurflow" or "neurflow.batch_size"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for a value no config may hold (ranges, orderings); override."""

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """Problems of this section against the whole (schema-validated) config, one sentence each; override."""
        return []

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None = None, *, key: str | None = None) -> Self:
        """The settings of a config section (``None`` or missing keys take the defaults).

        Raises
        ------
        ConfigError
            For an unknown key (with the closest known names) or a value
            :meth:`validate` refuses, naming the key path.
        """
        key = key or cls.KEY
        section = dict(section or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - set(names))
        if unknown:
            hints = [
                f"{key}.{u}"
                + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(u, names, 1)) else "")
                for u in unknown
            ]
            raise ConfigError(f"unknown key {', '.join(hints)}; known keys of {key}: {', '.join(names)}")
        hints_ = typing.get_type_hints(cls)
        values = {}
        for name, value in section.items():
            kind = hints_.get(name)
            if isinstance(kind, type) and issubclass(kind, Section):
                value = kind.from_config(value, key=f"{key}.{name}")
            values[name] = value
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{key}.{err}") from None

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain config values (nested sections as dicts), as the schema writes them."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
