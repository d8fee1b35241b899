"""Verified, resumable, atomic downloads (a tarball to extract, or plain files), and safe
extraction."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from nndl._atomic import file_lock
from nndl._typing import PathLike
from nndl.data.catalog import DATASETS
from nndl.data.cifar10 import PY_FOLDER, TARBALL_MD5, TARBALL_NAME
from nndl.data.errors import ChecksumError, DataError, disk_full

_CHUNK = 1 << 20


def md5sum(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str | Sequence[str], dest: PathLike, md5: str, *,
                  progress: bool = True, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download.

    Bytes go to ``dest + '.part'``; an interrupted transfer leaves that file
    for the next call to resume (HTTP Range). Only when the md5 matches is it
    renamed to ``dest``; on a mismatch it is deleted and ChecksumError raised.
    ``url`` may be a list of mirrors, tried in order until one succeeds. Processes
    downloading one ``dest`` at once take turns (:func:`_turn`): one downloads, the
    others then find it there.
    """
    dest = Path(dest)
    if _complete(dest, md5):
        return dest
    with new_folders(dest.parent), _turn(dest):
        if not _complete(dest, md5):
            _fetch_first([url] if isinstance(url, str) else list(url), dest, md5, progress,
                         timeout)
    return dest


def _complete(dest, md5):
    return dest.is_file() and md5sum(dest) == md5


def _turn(path):
    """The lock on making ``path`` (a file or folder), held while it is made:
    ``.<name>.lock`` beside it, removed when released."""
    return file_lock(path.with_name(f".{path.name}.lock"), remove=True)


def _fetch_first(urls, dest, md5, progress, timeout):
    """Fetch ``dest`` from the first of ``urls`` that works; else raise every reason."""
    errors = []
    for url in urls:
        try:
            return _fetch_verified(url, dest, md5, progress, timeout)
        except DataError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise type(errors[-1])("; ".join(str(e) for e in errors))


def _fetch_verified(url, dest, md5, progress, timeout):
    part = _fetch(url, dest.with_name(dest.name + ".part"), progress, timeout)
    actual = md5sum(part)
    if actual != md5:
        part.unlink()
        raise ChecksumError(f"{url}: md5 {actual} does not match the expected {md5}; "
                            "the partial file was deleted")
    os.replace(part, dest)


@contextmanager
def new_folders(folder):
    """Create ``folder`` and its missing parents; when the block fails, remove those of
    them that are still empty (a ``.part`` file kept for a resume keeps its folder)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for path in missing:
            try:
                path.rmdir()
            except OSError:
                break
        raise


def _fetch(url, part, progress, timeout):
    """Append ``url``'s bytes to ``part``, from where it stops (HTTP Range); returns it."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    expected = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            expected = have + int(length) if length is not None else None
            bar = _bar(progress, expected, have, part.name.removesuffix(".part"))
            with open(part, "ab" if have else "wb") as out, bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file already holds everything
            pass
        else:
            raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, OSError) and disk_full(exc):
            raise DataError(f"{part.parent}: no space left on the disk that holds this folder, "
                            f"while downloading {url}; free space there and run the command "
                            "again to resume") from exc
        raise DataError(
            f"download of {url} was interrupted or failed ({getattr(exc, 'reason', exc)})"
            + ("; run the command again to resume" if part.is_file() else "")
        ) from exc
    got = part.stat().st_size
    if expected is not None and got < expected:
        raise DataError(f"download of {url} stopped at {got} of {expected} bytes; "
                        "run the command again to resume")
    return part


def _bar(progress, total, initial, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        progress = False
    if not progress:
        return _NoBar()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=desc)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def safe_extract(tarball, dest):
    """Extract ``tarball`` into ``dest`` refusing absolute paths, ``..``, links out of
    ``dest`` and special files (``tarfile``'s ``data`` filter). A file that is not a
    whole tar archive is a DataError."""
    dest = Path(dest)
    try:
        with tarfile.open(tarball) as tar:
            _extract_members(tar, tarball, dest)
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error,
            gzip.BadGzipFile) as exc:
        raise DataError(f"{tarball}: not a readable tar archive ({_first_line(exc)})") from exc


def _extract_members(tar, tarball, dest):
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise DataError(f"{tarball}: refusing unsafe archive member ({exc})") from exc
        return
    for member in tar.getmembers():  # Pythons without extraction filters
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(dest.resolve()):
            raise DataError(f"{tarball}: refusing unsafe archive member {member.name!r}")
    tar.extractall(dest)


def download_cifar10(root: PathLike, *, url: str | None = None, md5: str | None = None,
                     progress: bool = True) -> Path:
    """Download and extract CIFAR-10 (python version) into ``root/cifar-10-batches-py``.

    ``url`` defaults to ``$NNDL_MIRROR_CIFAR10`` or ``$NNDL_CIFAR10_URL``, else the
    official one (see :mod:`nndl.data.catalog`); ``md5`` to the official tarball's.
    """
    urls = DATASETS["cifar10"].urls(TARBALL_NAME, url)
    return download_archive(root, PY_FOLDER, TARBALL_NAME, md5 or TARBALL_MD5, urls,
                            progress=progress)


def download_archive(root: PathLike, folder: str, file_name: str, md5: str,
                     urls: Sequence[str], *, progress: bool = True) -> Path:
    """Download the tarball ``file_name`` from ``urls`` and extract its ``folder/`` to
    ``root/folder``; returns that folder.

    The folder appears only once complete: extraction goes to a temporary
    folder beside it, then is renamed. The tarball is removed afterwards. Processes
    downloading one archive at once take turns: one downloads and extracts it, the others
    then find the folder.
    """
    root = Path(root)
    final = root / folder
    if final.is_dir():
        return final
    with new_folders(root), _turn(final):
        if final.is_dir():  # made while this process waited for its turn
            return final
        tarball = download_file(urls, root / file_name, md5, progress=progress)
        try:
            _extract_folder(tarball, final)
        except DataError as exc:  # its md5 matched: the next run would trust it again
            tarball.unlink()
            raise DataError(f"{exc}; the downloaded file was deleted") from exc
        tarball.unlink()
    return final


def download_files(root: PathLike, folder: str,
                   files: Sequence[tuple[str, str, Sequence[str]]], *,
                   progress: bool = True) -> Path:
    """Download ``files`` (``(file name, md5, urls)``) into ``root/folder``, which appears
    only once every file is there and checked: they gather in ``root/.folder.download``,
    where an interrupted run leaves its verified files and ``.part`` file to resume.
    Processes downloading one set at once take turns, like :func:`download_archive`."""
    root = Path(root)
    final = root / folder
    if final.is_dir():
        return final
    with new_folders(root), _turn(final):
        if final.is_dir():
            return final
        staging = root / f".{folder}.download"
        for name, md5, urls in files:
            download_file(urls, staging / name, md5, progress=progress)
        os.replace(staging, final)
    return final


def _extract_folder(tarball, final):
    """Extract ``tarball``'s folder named like ``final`` to ``final`` through a staging
    folder beside it."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        safe_extract(tarball, staging)
        extracted = staging / final.name
        if not extracted.is_dir():
            raise DataError(f"{tarball}: the archive has no {final.name}/ folder")
        os.replace(extracted, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _first_line(exc):
    return str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
