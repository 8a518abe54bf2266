"""Safe file writes shared by every layer: atomic replacement, flushed appends, folder locks.

A write either lands whole or not at all: the data goes to a temporary file in the same folder
(``.<name>.XXXXXXXX``), is fsynced, renamed over the target, and the folder is fsynced so that
the rename itself survives a power cut. An append is flushed and fsynced before it returns, so
a kill loses at most the line being written; readers of JSON lines ignore a torn last line. A
kill between creating a temporary and renaming it leaves the temporary behind:
:func:`remove_temporaries` clears those when a folder is taken up again. Files are created with
mode ``0o666`` filtered by the process umask, as ``open()`` does, so results in a shared folder
are as readable as the user's umask allows. :func:`folder_lock` keeps a second process out of a
folder that one is writing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError

_TEMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's, 8 characters long
_TEMP_LENGTH = 8
_TEMPORARY = re.compile(rf"\.(?P<name>.+)\.[{_TEMP_ALPHABET}]{{{_TEMP_LENGTH}}}")


def cache_dir() -> Path:
    """Where generated data and fixtures are cached: ``$SCALARIZE_CACHE`` or
    ``~/.cache/scalarize``."""
    return Path(os.environ.get("SCALARIZE_CACHE", Path.home() / ".cache" / "scalarize"))


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new empty file ``.<name>.XXXXXXXX`` beside ``path``, open for writing.

    Unlike :func:`tempfile.mkstemp` (always 0600), it is created with mode 0o666 and the kernel
    applies the umask (and a default ACL), exactly as ``open()`` does, so the renamed result
    has the mode any file the user writes would have. ``O_EXCL`` refuses an existing name (a
    symlink included)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        suffix = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(_TEMP_LENGTH))
        tmp = str(path.parent / f".{path.name}.{suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename or a new file in it) to disk. File systems that
    cannot fsync a folder (``EINVAL``, ``ENOTSUP``) are left as they are."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """File-system errors raised without a file name (a full disk on write or fsync) name
    ``path``, so the one-line error says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename:
    data fsynced before the rename, the folder fsynced after it."""
    fd, tmp = _create_temporary(path)
    try:
        with _naming(path), os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode())


def atomic_write_with(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary path)`` (e.g. ``torch.save``), fsync what it wrote, rename the
    result to ``path`` and fsync the folder."""
    fd, tmp = _create_temporary(path)
    os.close(fd)
    try:
        with _naming(path):
            write(tmp)
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def remove_temporaries(folder: Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporaries that a kill during an atomic write of one of ``names`` left in
    ``folder`` (``.<name>.XXXXXXXX``, regular files only, not recursive); returns them.

    Call it only while holding the folder's lock: a live writer's temporary looks the same."""
    wanted = set(names)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.fullmatch(entry.name)
        if match and match["name"] in wanted and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def empty_folder(folder: Path) -> None:
    """Remove everything inside ``folder`` but keep the folder itself (its lock is held on
    it); a missing folder is left missing."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def append_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON line per record to ``path`` and flush them to disk."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    if not text:
        return
    created = not path.exists()
    with _naming(path), open(path, "a") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_folder(path.parent)


def write_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with ``records``, one JSON line each."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_lines(path: Path) -> list[Any]:
    """All complete JSON lines of ``path`` (none when it is missing). A torn last line from a
    kill is ignored; a bad line before the last is damage, not a kill, and an error.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> _ = path.write_text('{"epoch": 1}\\n{"epo')
        >>> read_lines(path)
        [{'epoch': 1}]
    """
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ScalarizeError(f"{path} line {number} is not JSON, and it is not the last "
                                 "line a kill could tear; restore or delete the file") from None
    return records


# -- folder locks ------------------------------------------------------------------------------
_held: dict[tuple[int, int], list[int]] = {}  # folder locked here: (device, inode) -> [fd, depth]
_held_guard = threading.Lock()


def _lock_holder(stat: os.stat_result) -> int | None:
    """The pid holding a lock on the file ``stat`` describes, from ``/proc/locks`` (Linux;
    ``None`` elsewhere or when it is not listed)."""
    key = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and key in fields:
            pid = fields[fields.index(key) - 1]
            return int(pid) if pid.isdigit() and int(pid) > 0 else None
    return None


def _open_folder(path: Path) -> tuple[int, os.stat_result, bool]:
    """A descriptor of ``path`` (created when missing), its stat, and whether it was created."""
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    return fd, os.fstat(fd), created


@contextmanager
def folder_lock(path: Path, what: str) -> Iterator[Path]:
    """Hold ``path`` (created when missing) for the ``with`` block; a second process that asks
    for the same folder meanwhile gets a one-line :class:`ScalarizeError` naming the folder and
    the pid holding it. ``what`` names the folder in that line ("run folder", "sweep folder").

    The lock is ``fcntl.flock`` on the folder itself, not on a lock file inside it: nothing is
    left behind (no file that a listing, a snapshot or an overwrite has to know about and no
    stale file after a crash), and the kernel drops the lock when the holding process exits or
    is killed, so a lock is never stale. The same process may nest locks on one folder (a
    counter, not a second ``flock``, which would refuse its own holder). A folder the lock
    created and that is still empty at the end is removed (a refused command leaves no empty
    folder). A file system that cannot lock (some network mounts) runs unguarded rather than
    refusing to work.
    """
    path = Path(path)
    with _held_guard:  # one thread at a time: nesting is counted, never flocked twice
        for _ in range(10):
            fd, stat, created = _open_folder(path)
            key = (stat.st_dev, stat.st_ino)
            held = _held.get(key)
            if held is not None:
                held[1] += 1
                os.close(fd)
                created = False
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                pid = _lock_holder(stat)
                by = f" (pid {pid})" if pid is not None else ""
                raise ScalarizeError(f"{what} {path} is in use by another scalarize process"
                                     f"{by}; wait for it to finish, stop it, or choose another "
                                     "folder") from None
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EINVAL, errno.ENOTSUP, errno.EBADF):
                    os.close(fd)
                    raise
            try:  # the folder we locked may have been removed by its last holder meanwhile
                same = os.stat(path)
            except FileNotFoundError:
                same = None
            if same is not None and (same.st_dev, same.st_ino) == key:
                _held[key] = [fd, 1]
                break
            os.close(fd)
        else:
            raise ScalarizeError(f"{what} {path} keeps being removed and created; check what "
                                 "else writes there")
    try:
        yield path
    finally:
        with _held_guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                if created:
                    with suppress(OSError):  # not empty, or gone: leave it
                        path.rmdir()
                os.close(entry[0])  # closing the descriptor releases the flock
