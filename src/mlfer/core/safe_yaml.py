"""YAML for settings, hardened: ``yaml.safe_load`` without anchors and aliases, and its errors in one line."""

from __future__ import annotations

from typing import Any

import yaml

from mlfer.core.messages import clipped

#: What ``yaml.safe_load`` raises on bad text: YAMLError, ValueError for impossible dates
#: (``2020-99-99``), RecursionError for deep nesting (found by fuzzing).
YAML_ERRORS = (yaml.YAMLError, ValueError, RecursionError)


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases as it meets them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases (&name, *name) are not accepted in settings",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, refusing anchors and aliases (``&a``, ``*a``): settings never need
    them, and a few lines of nested aliases expand to gigabytes when the value is printed."""
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: no Python objects


def yaml_problem(error: BaseException) -> str:
    """One line saying what is wrong with a YAML text (PyYAML's own messages span several lines)."""
    if isinstance(error, yaml.MarkedYAMLError):
        text = " ".join(part for part in (error.context, error.problem) if part)
        mark = error.problem_mark or error.context_mark
        return text if mark is None else f"{text} (line {mark.line + 1}, column {mark.column + 1})"
    return clipped(" ".join(str(error).split()), 200)
