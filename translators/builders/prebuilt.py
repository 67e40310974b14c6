"""A message held as its serialized bytes: what builders hand the snapshot cache when they assembled the bytes
from cached parts (route configurations, virtual hosts, endpoint assignments), so it is never parsed and
serialized again on the way to the wire."""
from __future__ import annotations


class Prebuilt:
    """A message held as its serialized bytes, assembled from cached parts.

    It serializes to those bytes without protobuf work (``Resource.of`` calls
    ``SerializeToString``), and is parsed only if someone reads its fields
    (``render``, tests).  ``cluster_refs`` are the clusters its routes name, so
    snapshot consistency checks need no parse either.
    """

    __slots__ = ("_data", "_cls", "_msg", "cluster_refs", "content_version")

    def __init__(self, cls: type, data: bytes, *, cluster_refs: frozenset[str] = frozenset(),
                 content_version: str | None = None) -> None:
        self._data = data
        self._cls = cls
        self._msg = None
        self.cluster_refs = cluster_refs
        #: a content hash of ``data`` computed from its parts' (so a 2.5 MB configuration is not re-hashed)
        self.content_version = content_version

    def SerializeToString(self, deterministic: bool = False) -> bytes:  # noqa: N802 - protobuf's name
        return self._data

    @property
    def message(self):  # noqa: ANN201
        if self._msg is None:
            self._msg = self._cls.FromString(self._data)
        return self._msg

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate reads to the parsed message
        return getattr(self.message, name)


def real_message(msg):  # noqa: ANN001, ANN201
    """The protobuf message behind ``msg`` (a :class:`Prebuilt` or a message)."""
    return msg.message if isinstance(msg, Prebuilt) else msg
