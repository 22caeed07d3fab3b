"""Small registries, as timm keeps one: methods and backbones by name, so that the config, the CLI, the study and
the report all read one list, and an unknown name fails in one place."""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self.items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self.items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self.items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self.items)}") from None

    def names(self) -> list[str]:
        return list(self.items)

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)


METHODS: Registry = Registry("method")  # name -> core.method.Method
BACKBONES: Registry = Registry("backbone")  # name -> (num_classes) -> core.backbone.Backbone
RECIPES: Registry = Registry("fine-tuning setting")  # name -> methods.amf.Recipe
