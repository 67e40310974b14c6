"""Diffs of sequences by object identity: told by whoever made the change, else found at C speed.

The incremental engine keeps objects that did not change as the very same objects from one translation
to the next, so "what changed" is "which objects are not the same ones".

* **Told.**  The code that makes a new sequence by patching an old one knows which span it replaced, and
  says so (:func:`note_span`).  Every later consumer that holds the old sequence asks :func:`changed_span`
  and gets that span without a scan: one edit at 10,000 hosts costs one entry in every layer, not a pass
  over 10,000 in each.  The note is checked by identity of both sequences, so a consumer holding any
  other old sequence falls back to the scan.  A producer that changes items at scattered positions (the
  config store: one object per Kubernetes origin) says which items went and which came instead
  (:func:`note_delta`), and the consumer asks :func:`noted_delta`.
* **Found.**  Otherwise ``map`` / ``itertools.compress`` over ``operator.is_not`` and
  ``set.__contains__``, never a Python loop over 10,000 entries (about 40 ns an entry).

Notes are kept for the last :data:`NOTES` sequences made or asked about (strong references to both sides, so an ``id``
in the table always names the object it was taken from).
"""
from __future__ import annotations

import itertools
import operator
from collections import OrderedDict
from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")

#: how many noted transitions are kept, least recently used out: a translation notes about two per node
#: class and asks for them in that translation.  Each note keeps both sequences alive (10,000-30,000 items at
#: 10,000 services), so more notes are memory, and work for every pass of the cyclic GC
NOTES = 16
#: the config store's notes: only the newest is ever asked for
DELTAS = 2

Span = tuple[int, int, int]
_notes: OrderedDict[int, tuple[Sequence, Sequence, Span]] = OrderedDict()
_deltas: OrderedDict[int, tuple[Sequence, Sequence, tuple[list, list]]] = OrderedDict()


def note_span(old: Sequence, new: Sequence, span: Span) -> None:
    """Record that ``new`` is ``old`` with ``old[start:old_end]`` replaced by ``new[start:new_end]`` (the
    items outside the span are the very same objects).  The caller vouches for it."""
    start, old_end, new_end = span
    assert 0 <= start <= old_end <= len(old) and start <= new_end <= len(new) and \
        len(old) - old_end == len(new) - new_end, (span, len(old), len(new))
    _notes[id(new)] = (old, new, span)
    _notes.move_to_end(id(new))
    while len(_notes) > NOTES:
        _notes.popitem(last=False)


def note_delta(old: Sequence, new: Sequence, *, went: list, came: list) -> None:
    """Record that ``new`` holds ``old``'s items, in their order, less ``went`` and with ``came`` put in
    (at any positions).  The caller vouches for it."""
    assert len(old) - len(went) + len(came) == len(new), (len(old), len(went), len(came), len(new))
    _deltas[id(new)] = (old, new, (went, came))
    _deltas.move_to_end(id(new))
    while len(_deltas) > DELTAS:
        _deltas.popitem(last=False)


def noted_delta(old: Sequence, new: Sequence) -> tuple[list, list] | None:
    """``(went, came)`` noted for ``old -> new``, or None."""
    hit = _deltas.get(id(new))
    if hit is not None and hit[0] is old and hit[1] is new:
        return hit[2]
    return None


def noted_span(old: Sequence, new: Sequence) -> Span | None:
    """The span noted for ``old -> new``, or None."""
    hit = _notes.get(id(new))
    if hit is not None and hit[0] is old and hit[1] is new:
        _notes.move_to_end(id(new))  # every node class asks for the views' notes: kept while asked for
        return hit[2]
    return None


def changed_span(old: Sequence, new: Sequence) -> Span:
    """``(start, old_end, new_end)``: ``new`` is ``old`` with ``old[start:old_end]`` replaced by
    ``new[start:new_end]``; the items before and after are the very same objects."""
    if old is new:
        return len(old), len(old), len(new)
    hit = noted_span(old, new)
    if hit is not None:
        return hit
    m = min(len(old), len(new))
    start = next(itertools.compress(range(m), map(operator.is_not, old, new)), m)
    tail = next(itertools.compress(range(m - start), map(operator.is_not, reversed(old), reversed(new))), m - start)
    return start, len(old) - tail, len(new) - tail


def changed_positions(old: Sequence, new: Sequence) -> list[int]:
    """For sequences of equal length: the positions whose items are not the very same objects."""
    assert len(old) == len(new)
    start, end, _ = changed_span(old, new)
    return list(itertools.compress(range(start, end), map(operator.is_not, old[start:end], new[start:end])))


def not_among(items: Iterable[T], others: Iterable) -> list[T]:
    """The ``items`` that are not, by identity, any of ``others``."""
    ids = set(map(id, others))
    items = list(items)
    return list(itertools.compress(items, map(operator.not_, map(ids.__contains__, map(id, items)))))


def came_and_went(old: Sequence[T], new: Sequence[T]) -> tuple[list[T], list[T]]:
    """``(items of new not in old, items of old not in new)``, by identity; only the changed span is
    compared."""
    start, old_end, new_end = changed_span(old, new)
    a, b = old[start:old_end], new[start:new_end]
    return not_among(b, a), not_among(a, b)
