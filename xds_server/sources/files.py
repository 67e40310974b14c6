"""The file source: directories of YAML/JSON, watched for changes.

The embedded default source, so ``make demo`` needs no cluster.  Every file
is one *origin* in the :class:`~xds_server.store.ConfigStore`.  A file that
stops being valid YAML keeps its previous objects in the store (the gateway
keeps serving them) and reports exactly where it broke.  Directories are
watched recursively with ``watchfiles`` (inotify on Linux).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Iterable, Sequence

import watchfiles

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject
from xds_server.sources.documents import LoadError, parse_text
from xds_server.store import ConfigStore

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def is_config_file(path: Path) -> bool:
    return path.suffix in SUFFIXES and not any(part.startswith(".") for part in path.parts if part not in (".", ".."))


def config_files(dirs: Iterable[Path]) -> list[Path]:
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
            continue
        out.extend(p for p in d.rglob("*") if p.is_file() and is_config_file(p.relative_to(d)))
    return sorted(out)


def load_file(path: Path) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """Objects in ``path``; raises :class:`LoadError` when it cannot be read as YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(Diagnostic(Severity.ERROR, "load", f"cannot read file: {exc}", str(path))) from None
    return parse_text(text, file=str(path))


def load_dirs(dirs: Sequence[Path]) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """One-shot load, for ``validate`` and ``render``."""
    store = ConfigStore()
    source = FileSource(dirs=dirs, store=store)
    source.load_all()
    return store.objects()


class FileSource:
    def __init__(self, *, dirs: Sequence[Path], store: ConfigStore) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.store = store

    def load_all(self) -> None:
        for d in self.dirs:
            if not d.exists():
                self.store.replace(f"dir:{d}", (), [Diagnostic(Severity.ERROR, "load", "config directory does not exist", str(d))])
        for path in config_files(self.dirs):
            self.reload(path)

    def reload(self, path: Path) -> None:
        origin = str(path)
        if not path.exists():
            self.store.remove(origin)
            return
        try:
            objects, diags = load_file(path)
        except LoadError as exc:
            log.error("%s (previous objects from this file keep serving)", exc.diagnostic.format())
            self.store.keep_with_diagnostics(origin, [exc.diagnostic])
            return
        self.store.replace(origin, objects, diags)

    async def run(self, *, stop_event: asyncio.Event | None = None) -> None:
        """Watch the directories until ``stop_event`` is set (the test seam for this loop)."""
        watched = [str(d) for d in self.dirs if d.exists()]
        if not watched:
            return
        async for changes in watchfiles.awatch(*watched, stop_event=stop_event, debounce=50, step=20,
                                               recursive=True, force_polling=False):
            for _change, raw in sorted(changes, key=lambda c: c[1]):
                path = self._display(Path(raw))
                if path.is_dir():
                    for p in config_files([path]):
                        self.reload(p)
                elif path.suffix in SUFFIXES and not path.name.startswith("."):
                    self.reload(path)
                elif not path.exists():  # a removed directory
                    for origin in self.store.origins():
                        if origin.startswith(f"{path}/"):
                            self.store.remove(origin)

    def _display(self, path: Path) -> Path:
        """Report files with the directory prefix the user gave, not an absolute path."""
        for d in self.dirs:
            try:
                return d / path.relative_to(d.resolve())
            except ValueError:
                continue
        return path
