"""Downloads of the data sets that offer one: resumable, checksummed, unpacked safely.

Nothing downloads unless asked (``download: true`` in the benchmark options, or
``scalarize data prepare NAME --root DIR --download``). A partial file ``<name>.part`` is
continued with an HTTP ``Range`` request; the finished file must match its MD5 (the checksums
the data sets publish) before it is unpacked, else it is deleted and the error says so. Zip
archives of data sets that publish no checksum (DomainNet) are verified by the CRC-32 that the
zip format stores for every member, before anything is unpacked.

Written on ``urllib``, ``tarfile`` and ``zipfile`` (standard library): the usual helpers
(torchvision's) are not dependencies here, and the job is a few lines.
"""

from __future__ import annotations

import hashlib
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from scalarize.errors import ScalarizeError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One downloadable archive and the folder it unpacks to; ``md5`` is ``None`` for a zip
    whose publisher gives no checksum (its members' CRC-32s are checked instead)."""

    url: str
    md5: str | None
    unpacks_to: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, progress: bool | None = None) -> Path:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``), check its MD5 (unless ``None``),
    return ``dest``."""
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = response.status == 206
            total = response.length
            mode = "ab" if resumed else "wb"
            start = have if resumed else 0
            with open(part, mode) as handle, tqdm(
                    total=None if total is None else start + total, initial=start, unit="B",
                    unit_scale=True, desc=dest.name,
                    disable=None if progress is None else not progress) as bar:
                while block := response.read(CHUNK):
                    handle.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as exc:
        raise ScalarizeError(f"downloading {url} failed ({exc}); run the same command again to "
                             "resume, or fetch the file yourself into "
                             f"{dest.parent}") from None
    if md5 is not None and md5sum(part) != md5:
        part.unlink()
        raise ScalarizeError(f"{url} arrived corrupted (MD5 mismatch) and was deleted; run the "
                             "same command again")
    part.replace(dest)
    return dest


def fetch(archive: Archive, root: Path, progress: bool | None = None) -> Path:
    """Download (if needed) and unpack ``archive`` under ``root``; returns the unpacked folder."""
    target = root / archive.unpacks_to
    if target.is_dir():
        return target
    path = download(archive.url, root / ".downloads" / archive.filename, archive.md5, progress)
    if path.suffix == ".zip":
        _unzip(path, root)
    else:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(root, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ScalarizeError(f"{path} could not be unpacked ({exc}); delete it and run "
                                 "again") from None
    if not target.is_dir():
        raise ScalarizeError(f"{path} did not contain {archive.unpacks_to}/; is it the right "
                             "archive?")
    return target


def _unzip(path: Path, root: Path) -> None:
    """Check every member's CRC-32, then unpack (``zipfile`` drops absolute paths and ``..``);
    a damaged archive is deleted before anything is written."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is None:
                archive.extractall(root)
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:
        bad = f"({exc})"
    if bad is not None:
        path.unlink()
        raise ScalarizeError(f"{path.name} arrived corrupted (zip member {bad} fails its "
                             "CRC-32 check) and was deleted; run the same command again")
