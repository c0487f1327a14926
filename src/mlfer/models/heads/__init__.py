"""Classifier heads, by name (``model.head``).

``head_class("svml-rgcn")`` is the class of a head and ``head_names()`` lists them. A new
head is a :class:`Head` subclass decorated with ``@register_head("name")``: in a module of
this package (imported below), or in the user's own code before the model is built.
"""

from mlfer.models.heads import baseline, graph  # noqa: F401  (registers the built-in heads)
from mlfer.models.heads.base import ArrayInput, Head, HeadInputs
from mlfer.models.heads.registry import head_class, head_names, register_head

__all__ = ["ArrayInput", "Head", "HeadInputs", "head_class", "head_names", "register_head"]
