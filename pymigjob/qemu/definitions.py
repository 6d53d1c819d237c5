"""The domains a host knows, kept across restarts: one small JSON file per
domain (libvirt's persistent config), written atomically and durably so a
kill at any instant leaves the old file or the new one."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pymigjob as mj

__all__ = ["Definition", "Definitions", "check_name", "MAX_MEMORY_MB"]

#: names become file and socket names: keep them plain
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
MAX_MEMORY_MB = 1024


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise mj.InvalidArgument("domain name must be 1-40 characters of letters, digits, "
                                 f"'_', '.' and '-', starting with a letter or digit: {name!r}")
    return name


@dataclass(frozen=True)
class Definition:
    name: str
    memory_mb: int = 32

    def __post_init__(self) -> None:
        check_name(self.name)
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int) \
                or not 16 <= self.memory_mb <= MAX_MEMORY_MB:
            raise mj.InvalidArgument(f"memory_mb must be an integer in [16, {MAX_MEMORY_MB}]: "
                                     f"{self.memory_mb!r}")


class Definitions:
    """``state_dir/domains/NAME.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.json"

    def save(self, definition: Definition) -> None:
        path = self._path(definition.name)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(definition), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._sync_dir()

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return
        self._sync_dir()

    def load_all(self) -> dict[str, Definition]:
        found: dict[str, Definition] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                definition = Definition(data["name"], data.get("memory_mb", 32))
            except (ValueError, KeyError, TypeError, mj.Error):
                continue  # not ours, or damaged: ignored, as libvirt skips bad configs
            if definition.name == path.stem:
                found[definition.name] = definition
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # a writer killed mid-write
        return found

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
