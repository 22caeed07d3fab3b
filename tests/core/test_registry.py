"""The registries of methods and backbones: one list each, and one place an unknown name fails."""
import pytest

from multitune_lib.core.registry import BACKBONES, METHODS, Registry
from multitune_lib.errors import ConfigError


def test_unknown_name_is_a_config_error_naming_the_choices():
    r = Registry("widget")
    r.register("cog", 1)
    r.register("gear", 2)
    with pytest.raises(ConfigError, match="unknown widget 'sprocket': choose one of cog, gear"):
        r.get("sprocket")
    assert r.get("gear") == 2


def test_a_name_registers_once():
    r = Registry("widget")
    r.register("cog", 1)
    with pytest.raises(ValueError, match="widget 'cog' is registered twice"):
        r.register("cog", 2)
    assert r.get("cog") == 1 and r.names() == ["cog"]


def test_registration_order_is_kept():
    r = Registry("widget")
    for name in ("b", "a", "c"):
        assert r.register(name, name.upper()) == name.upper()
    assert r.names() == ["b", "a", "c"] == list(r) and "a" in r and "d" not in r


def test_the_library_registers_its_methods_and_backbones_on_import():
    assert METHODS.names() == ["finetune", "l2sp", "scratch", "feature", "spottune", "multitune", "amf", "contribution",
                              "selective_joint"]
    assert BACKBONES.names() == ["resnet26", "efficientnet_lite0"]
    with pytest.raises(ValueError, match="registered twice"):
        METHODS.register("multitune", METHODS.get("multitune"))
    assert METHODS.names().count("multitune") == 1
