"""Heads by name: ``model.head`` values are the names given to :func:`register_head`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mlfer.core.errors import MlferError
from mlfer.core.messages import short
from mlfer.models.heads.base import Head

H = TypeVar("H", bound=type[Head])

_HEADS: dict[str, type[Head]] = {}


def register_head(name: str) -> Callable[[H], H]:
    """Class decorator: make a :class:`~mlfer.models.heads.base.Head` subclass the head called ``name``.

    Example::

        @register_head("my-head")
        class MyHead(Head): ...
    """

    def register(cls: H) -> H:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"head {name!r} must be a subclass of Head, not {cls!r}")
        if _HEADS.get(name, cls) is not cls:
            raise ValueError(f"head {name!r} is already registered ({_HEADS[name].__qualname__})")
        _HEADS[name] = cls
        return cls

    return register


def head_class(name: str) -> type[Head]:
    """The head class registered as ``name``; an unknown name is refused with the choices."""
    try:
        return _HEADS[name]
    except KeyError:
        raise MlferError(f"unknown head {short(name)}; choose from {', '.join(_HEADS)}", field="model.head") from None


def head_names() -> tuple[str, ...]:
    """The registered head names, in registration order."""
    return tuple(_HEADS)
