"""Each paper's settings object is the single source of its defaults: they equal the JSON schema's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conceptscope.settings import ConfigError, Section
from conceptscope.workflow import SECTIONS, section_settings

SCHEMA = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())


def _schema_defaults(node: dict) -> dict:
    """Defaults of an object's properties; nested objects with their own properties recurse."""
    out = {}
    for name, prop in node["properties"].items():
        out[name] = _schema_defaults(prop) if "properties" in prop else prop["default"]
    return out


@pytest.mark.parametrize("key", sorted(SECTIONS))
def test_schema_defaults_equal_the_settings_defaults(key):
    cls = section_settings(key)
    assert issubclass(cls, Section) and cls.KEY == key
    assert cls().as_dict() == _schema_defaults(SCHEMA["properties"][key])


@pytest.mark.parametrize("key", sorted(SECTIONS))
def test_a_misspelt_key_names_the_key_path_and_the_closest_name(key):
    cls = section_settings(key)
    name = sorted(cls().as_dict())[0]
    with pytest.raises(ConfigError, match=rf"unknown key {key}\.{name}x \(did you mean '{name}'\?\)"):
        cls.from_config({name + "x": 1})


@pytest.mark.parametrize("key", sorted(SECTIONS))
def test_an_empty_section_is_the_defaults(key):
    cls = section_settings(key)
    assert cls.from_config(None) == cls() == cls.from_config({})
