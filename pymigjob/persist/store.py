"""Where job status records live between runs.

A store is anything with ``save(name, status)``, ``load_all()`` and
``delete(name)`` (:class:`Store`).  The driver calls ``save`` on every tracked
change of a domain, serialised per domain, and expects the record to be
durable when ``save`` returns; ``load_all`` is called by ``Driver.recover()``
after a restart.  Two stores come with the library:

* :class:`DirectoryStore` (the default for ``Driver(state_dir=PATH)``): one
  file per domain, written atomically and durably -- temporary file, fsync,
  rename over the old record, fsync of the directory -- so a ``kill -9`` at any
  instant leaves either the old record or the new one, never a torn or empty
  file, and a record that ``save`` returned is on disk;
* :class:`MemoryStore`: a dict, for tests and as the smallest example of a
  store a daemon may plug in (``Driver(store=...)``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import xml.etree.ElementTree as ET
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from ..errors import InternalError
from .status import JobStatus
from .status_xml import escape as _escape

__all__ = ["Store", "DirectoryStore", "MemoryStore"]

log = logging.getLogger("pymigjob")


@runtime_checkable
class Store(Protocol):
    """The interface the driver uses.  ``save`` must be durable when it
    returns; the driver never calls ``save``/``delete`` for one name from two
    threads at once, but may for different names."""

    def save(self, name: str, status: JobStatus) -> None: ...

    def load_all(self) -> dict[str, JobStatus]: ...

    def delete(self, name: str) -> None: ...


class MemoryStore:
    """A store in a dict (durable for as long as the process lives)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, JobStatus] = {}
        self.saves = 0

    def save(self, name: str, status: JobStatus) -> None:
        with self._lock:
            self._records[name] = status
            self.saves += 1

    def load_all(self) -> dict[str, JobStatus]:
        with self._lock:
            return dict(self._records)

    def delete(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._records)} records>"


_SUFFIX = ".xml"
_TMP_PREFIX = ".tmp-"
_MAX_STEM = 200  # bytes; file names stay well under NAME_MAX (255)


def record_filename(name: str) -> str:
    """The file holding a domain's record: the name percent-encoded (no
    separators, no leading dot or tilde), or ``~`` and a digest when that
    would be too long (the name itself is always inside the file)."""
    stem = quote(name, safe="")
    if stem.startswith((".", "~")):  # no hidden files; "~" starts only digests
        stem = f"%{ord(stem[0]):02X}" + stem[1:]
    if not stem or len(stem) > _MAX_STEM:
        stem = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()
    return stem + _SUFFIX


def format_record(name: str, status: JobStatus) -> bytes:
    """A status file: libvirt's ``<job>`` element inside a ``<domstatus>``."""
    return (f"<domstatus name='{_escape(name)}'>\n  {status.to_xml()}\n"
            f"</domstatus>\n").encode("utf-8")


def parse_record(data: bytes, where: str = "record") -> tuple[str, JobStatus]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise InternalError(f"{where}: cannot parse the status file: {e}") from None
    name = root.get("name")
    if root.tag != "domstatus" or name is None:
        raise InternalError(f"{where}: not a domain status file")
    job = root.find("job")
    if job is None:
        return name, JobStatus()
    return name, JobStatus.from_xml(ET.tostring(job))


class DirectoryStore:
    """One status file per domain in ``path`` (created if missing).

    A directory belongs to one driver at a time (others may read it).
    ``load_all`` only reads; it raises InternalError naming the file if a
    record cannot be read (which atomic replacement rules out short of
    outside interference).  ``remove_leftovers`` deletes the temporary files
    of a process that died mid-write; ``Driver.recover()`` calls it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._seq = itertools.count()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<DirectoryStore {self.path!r}>"

    def close(self) -> None:
        fd, self._dir_fd = self._dir_fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _fd(self) -> int:
        if self._dir_fd < 0:
            raise ValueError("the store is closed")
        return self._dir_fd

    def save(self, name: str, status: JobStatus) -> None:
        dir_fd = self._fd()
        final = record_filename(name)
        data = format_record(name, status)
        tmp = f"{_TMP_PREFIX}{self._pid}-{next(self._seq)}-{final}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        os.fsync(dir_fd)  # the rename itself

    def delete(self, name: str) -> None:
        dir_fd = self._fd()
        try:
            os.unlink(record_filename(name), dir_fd=dir_fd)
        except FileNotFoundError:
            return
        os.fsync(dir_fd)

    def load_all(self) -> dict[str, JobStatus]:
        dir_fd = self._fd()
        records: dict[str, JobStatus] = {}
        for entry in sorted(os.listdir(dir_fd)):
            if not entry.endswith(_SUFFIX) or entry.startswith("."):
                continue
            try:
                fd = os.open(entry, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:  # deleted since the listing: not a record now
                continue
            with os.fdopen(fd, "rb") as f:
                data = f.read()
            name, status = parse_record(data, os.path.join(self.path, entry))
            if record_filename(name) != entry:
                raise InternalError(f"{os.path.join(self.path, entry)}: holds the "
                                    f"record of domain '{name}'")
            records[name] = status
        return records

    def remove_leftovers(self) -> int:
        """Delete the temporary files of writers that died mid-write (another
        process's; recovery calls this).  Returns how many were removed."""
        dir_fd = self._fd()
        removed = 0
        for entry in os.listdir(dir_fd):
            if entry.startswith(_TMP_PREFIX) and \
                    entry[len(_TMP_PREFIX):].split("-", 1)[0] != str(self._pid):
                try:
                    os.unlink(entry, dir_fd=dir_fd)
                    removed += 1
                except OSError:
                    pass
        return removed

    # for tests and tools: the record's file
    def filename(self, name: str) -> str:
        return os.path.join(self.path, record_filename(name))

