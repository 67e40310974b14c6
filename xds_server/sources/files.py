"""The file source: directories of YAML/JSON, watched for changes.

The embedded default source, so ``make demo`` needs no cluster.  Every file
is one *origin* in the :class:`~xds_server.store.ConfigStore`.

Nothing in a directory may take the server down:

* a file that stops being valid YAML, is too large (``max_file_bytes``), or
  fails to load for any reason keeps its previous objects in the store (the
  gateway keeps serving them) and reports exactly what is wrong;
* files are read and parsed in a worker thread, so a large file never
  stalls the ADS streams;
* a config directory that disappears keeps its last objects, with a
  diagnostic, and is reloaded when it comes back (``rm -rf`` and re-create,
  a ``git checkout``, a volume re-mount);
* one rule decides which paths are config files, for the first load and for
  watch events alike: hidden paths (``.git``, the ``..data`` and
  ``..2024_01_01`` directories of a Kubernetes ConfigMap mount) are never
  loaded themselves.  A change under a hidden path (the ConfigMap's atomic
  ``..data`` symlink swap) rescans the directory through its visible names.

Directories are watched recursively with ``watchfiles`` (inotify on Linux).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Iterable, Sequence

import watchfiles

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject
from xds_server import gc_policy
from xds_server.sources.documents import LoadError, parse_text
from xds_server.store import ConfigStore

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})
#: default cap on one config file's size
MAX_FILE_BYTES = 16 * 1024 * 1024
#: how often a missing config directory is checked for
MISSING_POLL_S = 0.5


def is_config_file(relative: Path) -> bool:
    """The one rule for which paths (relative to a config directory) are config files."""
    return relative.suffix in SUFFIXES and not any(part.startswith(".") for part in relative.parts
                                                   if part not in (".", ".."))


def config_files(dirs: Iterable[Path]) -> list[Path]:
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
            continue
        out.extend(p for p in d.rglob("*") if p.is_file() and is_config_file(p.relative_to(d)))
    return sorted(out)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def load_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """Objects in ``path``; raises :class:`LoadError` when it cannot be used at all."""
    def error(message: str) -> LoadError:
        return LoadError(Diagnostic(Severity.ERROR, "load", message, str(path)))

    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"file is {size} bytes; the limit is {max_bytes} (--max-file-bytes)")
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise error(f"file is over {max_bytes} bytes, the limit (--max-file-bytes)")
        text = data.decode("utf-8")
    except LoadError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}") from None
    try:
        if len(data) < _BIG_FILE_BYTES:
            return parse_text(text, file=str(path))
        with gc_policy.paused():  # a big file: millions of objects (see xds_server/gc_policy.py)
            parsed = parse_text(text, file=str(path))
            gc_policy.freeze_if_big()
            return parsed
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure on one file is an error on that file
        raise error(f"cannot load file: {type(exc).__name__}: {exc}"[:500]) from None


def load_dirs(dirs: Sequence[Path], *, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """One-shot load, for ``validate`` and ``render``."""
    store = ConfigStore()
    source = FileSource(dirs=dirs, store=store, max_file_bytes=max_file_bytes)
    source.load_all()
    return store.objects()


#: files at least this big are parsed with the cyclic GC paused
_BIG_FILE_BYTES = 1 << 20


class FileSource:
    def __init__(self, *, dirs: Sequence[Path], store: ConfigStore, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.store = store
        self.max_file_bytes = max_file_bytes
        #: (mtime_ns, size, inode) of each loaded file, so a rescan skips what did not change
        self._stamps: dict[str, tuple[int, int, int]] = {}

    # ------------------------------------------------------------------ loading
    def _read(self, path: Path) -> tuple[list[ConfigObject], list[Diagnostic]] | LoadError | None:
        """Worker-thread part of a reload: None when the path is not a file any more."""
        if not path.is_file():
            return None
        try:
            return load_file(path, max_bytes=self.max_file_bytes)
        except LoadError as exc:
            return exc

    def _apply(self, path: Path, result: tuple[list[ConfigObject], list[Diagnostic]] | LoadError | None) -> None:
        origin = str(path)
        stamp = _stamp(path) if result is not None and not isinstance(result, LoadError) else None
        if stamp is None:
            self._stamps.pop(origin, None)
        else:
            self._stamps[origin] = stamp
        if result is None:
            self.store.remove(origin)
        elif isinstance(result, LoadError):
            log.error("%s (previous objects from this file keep serving)", result.diagnostic.format())
            self.store.keep_with_diagnostics(origin, [result.diagnostic])
        else:
            self.store.replace(origin, *result)

    def reload(self, path: Path) -> None:
        self._apply(path, self._read(path))

    async def areload(self, path: Path) -> None:
        self._apply(path, await asyncio.to_thread(self._read, path))

    def _missing(self, d: Path) -> None:
        self.store.set_diagnostics(f"dir:{d}", [Diagnostic(
            Severity.ERROR, "load", "config directory does not exist; its last loaded objects keep serving "
            "until it comes back", str(d))])

    def load_all(self) -> None:
        for d in self.dirs:
            if not d.exists():
                self._missing(d)
        for path in config_files(self.dirs):
            self.reload(path)

    async def aload_all(self) -> None:
        """:meth:`load_all`, reading files in a worker thread."""
        for d in self.dirs:
            if not d.exists():
                self._missing(d)
        for path in await asyncio.to_thread(config_files, self.dirs):
            await self.areload(path)

    async def rescan(self, root: Path) -> None:
        """Reload every config file under ``root`` and drop the origins that are gone."""
        present = await asyncio.to_thread(config_files, [root])
        keep = {str(p) for p in present}
        prefix = str(root) if root.is_file() else f"{root}/"
        for origin in self.store.origins():
            if (origin == str(root) or origin.startswith(prefix)) and origin not in keep:
                self.store.remove(origin)
        for path in present:
            stamp = _stamp(path)
            if stamp is not None and self._stamps.get(str(path)) == stamp and str(path) in keep \
                    and self.store.has_origin(str(path)):
                continue  # unchanged since it was loaded (a rescan after a ConfigMap swap, say)
            await self.areload(path)

    # ------------------------------------------------------------------ watching
    async def run(self, *, stop_event: asyncio.Event | None = None) -> None:
        """Watch the directories until ``stop_event`` is set (the test seam for this loop)."""
        stop_event = stop_event or asyncio.Event()
        if not self.dirs:
            return
        while not stop_event.is_set():
            for d in self.dirs:
                if d.exists() and self.store.has_diagnostics(f"dir:{d}"):
                    log.info("config directory %s is back; reloading it", d)
                    self.store.set_diagnostics(f"dir:{d}", [])
                    await self.rescan(d)
            present = [d for d in self.dirs if d.exists()]
            if present:
                await self._watch(present, stop_event)
            else:
                try:
                    await asyncio.wait_for(stop_event.wait(), MISSING_POLL_S)
                except asyncio.TimeoutError:
                    pass

    async def _watch(self, present: list[Path], stop_event: asyncio.Event) -> None:
        """Watch until stopped, or until a watched directory disappears (or a missing one appears)."""
        missing = [d for d in self.dirs if d not in present]
        local_stop = asyncio.Event()

        async def relay() -> None:
            while not stop_event.is_set() and not local_stop.is_set():
                if any(d.exists() for d in missing):
                    local_stop.set()
                    return
                await asyncio.sleep(MISSING_POLL_S)
            local_stop.set()

        relay_task = asyncio.create_task(relay())
        try:
            async for changes in watchfiles.awatch(*map(str, present), stop_event=local_stop, debounce=20, step=10,
                                                   recursive=True, force_polling=False):
                gone = [d for d in present if not d.exists()]
                for d in gone:
                    log.error("config directory %s disappeared; its last objects keep serving", d)
                    self._missing(d)
                await self._handle(changes, skip=gone)
                if gone:
                    return
        except (FileNotFoundError, RuntimeError, OSError) as exc:
            log.warning("watching %s stopped (%s); watching again", ", ".join(map(str, present)), exc)
            await asyncio.sleep(MISSING_POLL_S)
        finally:
            local_stop.set()
            relay_task.cancel()

    def _root_of(self, path: Path) -> Path | None:
        for d in self.dirs:
            if path == d or d in path.parents:
                return d
        return None

    async def _handle(self, changes: set[tuple[watchfiles.Change, str]], *, skip: Sequence[Path] = ()) -> None:
        rescans: set[Path] = set()
        files: set[Path] = set()
        for _change, raw in changes:
            path = self._display(Path(raw))
            root = self._root_of(path)
            if root is None or root in skip:
                continue
            relative = path.relative_to(root) if path != root else Path(".")
            hidden = any(part.startswith(".") for part in relative.parts if part not in (".", ".."))
            gone_dir = not path.exists() and path.suffix not in SUFFIXES and any(
                o.startswith(f"{path}/") for o in self.store.origins())
            if hidden or path.is_dir() or gone_dir:
                # a hidden path (a ConfigMap's ..data swap), a directory, or a removed directory:
                # rescan through the visible names with the same rule as the first load
                rescans.add(root)
            elif is_config_file(relative) or (root.is_file() and path == root):
                files.add(path)
        for root in sorted(rescans):
            await self.rescan(root)
        for path in sorted(files):
            if not any(r == path or r in path.parents for r in rescans):
                await self.areload(path)

    def _display(self, path: Path) -> Path:
        """Report files with the directory prefix the user gave, not an absolute path."""
        for d in self.dirs:
            for base in (d.resolve(), d.absolute()):
                try:
                    return d / path.relative_to(base)
                except ValueError:
                    continue
        return path
