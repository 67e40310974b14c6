"""Diffs of sequences by object identity, at C speed.

The incremental engine keeps objects that did not change as the very same objects from one translation
to the next, so "what changed" is "which objects are not the same ones": found here with ``map`` /
``itertools.compress`` over ``operator.is_not`` and ``set.__contains__``, never a Python loop over 10,000
entries.
"""
from __future__ import annotations

import itertools
import operator
from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")


def changed_span(old: Sequence, new: Sequence) -> tuple[int, int, int]:
    """``(start, old_end, new_end)``: ``new`` is ``old`` with ``old[start:old_end]`` replaced by
    ``new[start:new_end]``; the items before and after are the very same objects."""
    m = min(len(old), len(new))
    start = next(itertools.compress(range(m), map(operator.is_not, old, new)), m)
    tail = next(itertools.compress(range(m - start), map(operator.is_not, reversed(old), reversed(new))), m - start)
    return start, len(old) - tail, len(new) - tail


def not_among(items: Iterable[T], others: Iterable) -> list[T]:
    """The ``items`` that are not, by identity, any of ``others``."""
    ids = set(map(id, others))
    items = list(items)
    return list(itertools.compress(items, map(operator.not_, map(ids.__contains__, map(id, items)))))
