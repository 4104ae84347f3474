"""Crash-safe file writes: write beside the target, fsync, then rename over it.

A write that cannot happen -- the target is a folder, its folder is a file, the disk
is full or read-only, the name is too long -- raises a one-line
:class:`~capsule_lib.errors.CapsuleError` naming the file, and leaves the old file
(if any) as it was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CapsuleError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable", "os_error"]

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENAMETOOLONG: "the name is longer than the file system allows",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a folder on its path is a file",
    errno.EEXIST: "a folder on its path is a file",
    errno.ENOENT: "its folder does not exist",
}


def os_error(exc: OSError, action: str, path) -> CapsuleError:
    """A one-line CapsuleError for an OSError, such as "cannot write out.mid: permission denied"."""
    reason = _REASONS.get(exc.errno) or (exc.strerror or str(exc) or type(exc).__name__).lower()
    return CapsuleError(f"cannot {action} {path}: {reason}")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):  # Windows has no pathconf
        return 255


def check_writable(path: str | os.PathLike) -> Path:
    """Refuse early, with a clear message, a file that cannot be written: before long work.

    ``path`` must not be a folder, and its nearest existing folder must take a new file
    (a probe file is created there and removed at once; no folder is created).
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise CapsuleError(f"cannot write {path}: it is a folder; give a file name")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OSError(errno.ENOTDIR, "not a folder")
        if len(os.fsencode(path.name)) > _name_max(folder):
            raise OSError(errno.ENAMETOOLONG, "name too long")
        fd, probe = tempfile.mkstemp(prefix=".capsule-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise os_error(exc, "write", path) from None
    return path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    For writers that need a file name (``torch.save``, ``safetensors``, ``tarfile``):
    a reader sees the old file or the new one, never half of it.  The temporary file
    lives in the target's folder (a rename is atomic only within one file system) and
    is removed if the body raises.  File-system failures, the body's included, become
    a :class:`CapsuleError` naming ``path``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise CapsuleError(f"cannot write {path}: it is a folder; give a file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The name is cut so the temporary name stays within the file system's limit too.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error(exc, "write", path) from None
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would,
        # or keep the mode of the file it replaces.
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise os_error(exc, "write", path) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
