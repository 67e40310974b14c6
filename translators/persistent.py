"""Persistent maps for the big per-type tables: a change costs what it changes, not a copy.

Each translation hands the next one its CDS and EDS tables (30,000 entries each at 10,000 services) and the
VHDS hosts (10,000), and every snapshot must stay as it was for the streams still reading it.  A ``dict``
made that a copy per change: about 4 ms per table on a 2-core machine, because copying touches every key
and value (cold memory: the cost is the cache misses, not the loop).  ``immutables.Map`` (MagicStack's HAMT,
the structure behind CPython's ``contextvars``) shares everything but the path to a changed key, so a
patched table costs a few microseconds per changed entry.

The maps are read through the ``Mapping`` interface (``get``, ``in``, iteration, ``items``), as the dicts
were; lookups cost about twice a dict's, iteration about three times (a whole-table walk happens on a
client's first response, not per change).
"""
from __future__ import annotations

from typing import Iterable, Mapping, TypeVar

import immutables

K = TypeVar("K")
V = TypeVar("V")

Map = immutables.Map


def frozen(items: Mapping[K, V]) -> "immutables.Map[K, V]":
    """A persistent map of ``items`` (the very map when it already is one)."""
    return items if isinstance(items, Map) else Map(items)


def patched(base: Mapping[K, V], *, put: Iterable[tuple[K, V]] = (), drop: Iterable[K] = ()) \
        -> "immutables.Map[K, V]":
    """``base`` with the ``put`` pairs set and the ``drop`` keys removed; ``base`` is left as it was."""
    with frozen(base).mutate() as m:
        for k, v in put:
            m[k] = v
        for k in drop:
            m.pop(k, None)
        return m.finish()
