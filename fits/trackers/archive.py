"""Safe extraction of an uploaded .zip or .tar(.gz, .bz2, .xz) of runs.

Only regular files and directories are written, each to a path computed here below the destination
(never one the archive chose: no absolute paths, no ``..``, no links, devices or FIFOs). Members and
bytes are counted while extracting, against :class:`~fits.trackers.core.ImportLimits`, so neither a
lying header nor a compression bomb gets past the bounds. Anything refused stops the import naming the
member: a partly unsafe archive is not half imported.
"""
from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .core import ImportLimits, RunsImportError

_CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def archive_kind(path: Path) -> str | None:
    """"zip", "tar" or None, from the file's first bytes (not its name)."""
    if not path.is_file():
        return None
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except (OSError, tarfile.TarError, EOFError):
        return None


def archive_stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The member's path as parts below the destination; refuses anything that could leave it."""
    if "\x00" in name:
        raise RunsImportError(f"member name {name!r} holds a NUL byte", path=archive, field="member")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise RunsImportError(f"member {name!r} has an absolute path; refused", path=archive, field="member")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise RunsImportError(f"member {name!r} points outside the archive (..); refused", path=archive,
                              field="member")
    return parts


class _Budget:
    def __init__(self, limits: ImportLimits, archive: Path):
        self.limits, self.archive = limits, archive
        self.members = 0
        self.bytes = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise RunsImportError(f"holds more than {self.limits.max_files} members, the limit for one upload",
                                  path=self.archive, field="members")

    def copy(self, source, target: Path, name: str) -> None:
        with open(target, "xb") as out:
            while chunk := source.read(_CHUNK):
                self.bytes += len(chunk)
                if self.bytes > self.limits.max_bytes:
                    raise RunsImportError(f"extracts to more than {self.limits.max_bytes} bytes, the limit for one "
                                          f"upload (reached in member {name!r})", path=self.archive, field="size")
                out.write(chunk)


def _target(dest: Path, parts: tuple[str, ...], archive: Path, name: str) -> Path:
    target = dest.joinpath(*parts)
    # Belt and braces: the resolved path must still be below dest (it holds no links we did not make).
    if not target.resolve().is_relative_to(dest.resolve()):
        raise RunsImportError(f"member {name!r} points outside the archive; refused", path=archive, field="member")
    return target


def extract_archive(archive: Path, dest: Path, limits: ImportLimits) -> Path:
    """Extract ``archive`` below ``dest`` and return the directory holding its runs.

    Archives of one folder (``logs/run-a/...``, ``logs/run-b/...``) return that folder, so run
    names do not depend on what the folder was called when it was packed.
    """
    kind = archive_kind(archive)
    budget = _Budget(limits, archive)
    if kind == "zip":
        _extract_zip(archive, dest, budget)
    elif kind == "tar":
        _extract_tar(archive, dest, budget)
    else:
        raise RunsImportError("not a zip or tar archive", path=archive, field="file")
    root = dest
    while True:
        entries = [e for e in root.iterdir() if e.name not in ("__MACOSX",)]
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        else:
            return root


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                budget.member(info.filename)
                parts = _safe_parts(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise RunsImportError(f"member {info.filename!r} is a symbolic link; refused", path=archive,
                                          field="member")
                if info.flag_bits & 0x1:
                    raise RunsImportError(f"member {info.filename!r} is encrypted", path=archive, field="member")
                if not parts:
                    continue
                target = _target(dest, parts, archive, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise RunsImportError(f"member {info.filename!r} appears twice", path=archive, field="member")
                with zf.open(info) as source:
                    budget.copy(source, target, info.filename)
    except RunsImportError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError,
            zlib.error) as exc:
        raise RunsImportError(f"corrupt or unsupported zip archive: {exc}", path=archive, field="file") from None


def _extract_tar(archive: Path, dest: Path, budget: _Budget) -> None:
    try:
        # Streaming mode ("r|*"): members are read in order, never seeking, so a bomb is cut off by the
        # byte count rather than by scanning the whole archive first.
        with tarfile.open(archive, mode="r|*") as tf:
            for member in tf:
                budget.member(member.name)
                parts = _safe_parts(member.name, archive)
                if member.issym() or member.islnk():
                    raise RunsImportError(f"member {member.name!r} is a link; refused", path=archive, field="member")
                if not (member.isfile() or member.isdir()):
                    raise RunsImportError(f"member {member.name!r} is not a regular file or directory; refused",
                                          path=archive, field="member")
                if not parts:
                    continue
                target = _target(dest, parts, archive, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise RunsImportError(f"member {member.name!r} appears twice", path=archive, field="member")
                source = tf.extractfile(member)
                budget.copy(source, target, member.name)
    except RunsImportError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise RunsImportError(f"corrupt or unsupported tar archive: {exc}", path=archive, field="file") from None
