"""Writing output files safely: what every command uses to put a file where the user asked.

Temporaries beside the target, and their cleanup after a killed writer (`temporary_path`,
`remove_orphaned_temporaries`); atomic, durable replacement (`write_atomic`, `replace_durably`) and
exclusive creation (`write_new`); pipes, devices and stdout, which are written into rather than
replaced (`destination`, `is_stream`, `write_into`, `write_all`); and the wording of a failed write
(`write_failure`, `write_hint`). What may not be overwritten (a checkpoint, a run's records) is
checkpoint.py's `refuse_to_overwrite_checkpoint`: it knows the formats.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import itertools
import os
import re
import stat
from collections.abc import Collection, Iterator
from pathlib import Path

from acgan_cli.core.config import user_path
from acgan_cli.core.errors import UsageError

# A temporary file's name: `.NAME.PID-N.tmp`, or `.NAME.PID-N.tmp.EXT` for an export (torch.export
# wants its archive to end in .pt2; TorchScript's extension is .torchscript.pt). N counts this
# process's writes, so that two threads writing one file never share a temporary (earlier
# versions' `.NAME.PID.tmp` is still recognised as an orphan).
_TEMPORARY = re.compile(r"\..+\.(\d+)(?:-\d+)?\.tmp(?:\.[A-Za-z0-9]+){0,2}")
_writes = itertools.count(1)


NAME_MAX = 255  # bytes in one file name, on Linux and macOS file systems
_TEMPORARY_ROOM = len(".") + len(".4294967295-9999999999.tmp") + len(".torchscript.pt")  # all but the name


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A hidden sibling of `path`, new for each call, to write first and rename onto it (same folder,
    same file system); `suffix` (".pt2") ends its name, for writers that read the extension."""
    return path.with_name(f".{_temporary_stem(path.name)}.{os.getpid()}-{next(_writes)}.tmp{suffix}")


def own_temporaries(folder: Path) -> list[Path]:
    """The temporary files in `folder` that this process made and has not yet renamed or removed."""
    return list(folder.glob(f".*.{os.getpid()}-*.tmp*"))


def _temporary_stem(name: str) -> str:
    """`name`, or for a name too long to take the temporary's additions (a legal name of 240 to 255
    bytes, refused as "File name too long"), its start and a hash of the whole name."""
    raw = os.fsencode(name)
    if len(raw) + _TEMPORARY_ROOM <= NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:12]
    start = raw[: NAME_MAX - _TEMPORARY_ROOM - len(digest) - 1].decode("utf-8", "ignore")  # whole characters
    return f"{start}~{digest}"


def remove_orphaned_temporaries(folder: Path, of: str | None = None) -> list[Path]:
    """Delete the temporary files in `folder` whose writing process is gone (killed mid-write);
    with `of`, only those of the file of that name.

    A file whose process id is alive is kept: it may be a write in progress. Returns what went.
    """
    removed = []
    for path in folder.glob(f".{glob.escape(_temporary_stem(of)) if of else '*'}.*.tmp*"):
        written_by = _TEMPORARY.fullmatch(path.name)
        if written_by is None or _alive(int(written_by.group(1))):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


# Windows' os.kill(pid, 0) sends that process group a Ctrl-C: every temporary is taken as live there.
_CAN_PROBE_PIDS = os.name == "posix"


def _alive(pid: int) -> bool:
    if not _CAN_PROBE_PIDS:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid: leave its file alone
    return True


# An open file named through /dev or /proc: /dev/fd/N, /proc/self/fd/N, /proc/PID/task/TID/fd/N, …
_DESCRIPTOR = re.compile(r"/(?:dev|proc/(self|thread-self|\d+)(?:/task/\d+)?)/fd/(\d+)")


def _descriptor_named(path: Path) -> tuple[str, int] | None:
    """(whose, N) if `path`, or a link it leads through, names a process's open file N; else None."""
    current = os.path.join(os.getcwd(), path)
    for _ in range(40):  # the kernel's own limit on a chain of links
        # Its folder as the kernel resolves it (`..` after a link, `//dev`, /dev/fd -> /proc/PID/fd).
        folder, name = os.path.split(current)
        if name in ("", ".", ".."):
            return None
        current = os.path.join(os.path.realpath(folder), name)
        if current in ("/dev/stdout", "/dev/stderr"):
            return "self", 1 if current == "/dev/stdout" else 2
        if match := _DESCRIPTOR.fullmatch(current):
            return match.group(1) or "self", int(match.group(2))
        try:
            link = os.readlink(current)
        except OSError:  # not a link (or not there): an ordinary path
            return None
        current = os.path.join(os.path.dirname(current), link)
    return None


def own_descriptor(path: Path) -> int | None:
    """The number of this process's open file that `path` names, else None.

    /dev/stdout, /dev/fd/N and /proc/self/fd/N (or a symlink to one) name a file the shell opened
    for us: a pipe, a terminal, or a regular file opened by `>` or `>>`. Such a file is written
    through that open file, at its offset and in its mode. Following the links instead leads to a
    `pipe:[N]` that does not exist, or to the redirected file, which a rename would replace
    (losing what `>>` was appending to).
    """
    named = _descriptor_named(path)
    if named is None or named[0] not in ("self", "thread-self", str(os.getpid())):
        return None
    return named[1]


def names_stdout(out: str | None) -> bool:
    """Whether an --out value names this process's stdout (/dev/stdout, /dev/fd/1, …)."""
    return bool(out) and own_descriptor(user_path(out)) == 1


def extension(path: str | Path, formats: Collection[str] = ()) -> str:
    """The extension that names a file's format, lower-cased: "g.ONNX" -> ".onnx". A name that is
    only one of `formats`' extensions (".npy", which pathlib reads as a hidden file without one)
    is its own; any other hidden name (".grid") has none."""
    name = Path(path).name
    if name.startswith(".") and name.count(".") == 1:
        return name.lower() if name.lower() in formats else ""
    return Path(name).suffix.lower()


def write_all(fd: int, data: bytes) -> None:
    """All of `data` into the open file `fd`, which may take it in pieces (a pipe).

    A short write (a full disk, `ulimit -f`) is an OSError that says how much went: never a
    silently cut file. A reader that went away is a BrokenPipeError, as from os.write. A Ctrl-C
    while it writes carries `cut_short`: (bytes surely written, bytes in all), for the hint that
    what a stream got is cut off (write_all writes streams: stdout, a pipe, a device).
    """
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except KeyboardInterrupt as exc:  # Ctrl-C while a slow reader holds it up: it may have a part
        # At least this much went: a signal can land as os.write returns, losing its count.
        exc.cut_short = (len(data) - len(view), len(data))
        raise
    except BrokenPipeError:
        raise
    except OSError as exc:
        written = f"{len(data) - len(view)} of {len(data)} bytes written"
        raise OSError(exc.errno, f"{exc.strerror or exc}: {written}") from None


def destination(path: Path) -> Path:
    """The file that writing `path` replaces: a symlink's final target, so the link itself stays.

    A link to one of our open files or to a device or pipe stays as given: it is written into.
    """
    if not path.is_symlink() or is_stream(path):
        return path
    return Path(os.path.realpath(path))


def output_destination(path: Path) -> Path:
    """`destination(path)` for a file a command was asked to write (--out): a UsageError if `path`
    leads through symbolic links that loop, or through one that leads where there is no folder.

    A loop's link was replaced by the file, and a link to a missing folder had that folder made
    where it pointed; the shell refuses both ("No such file or directory"). The missing folders of
    a path that is no link are made, as asked.
    """
    problem = _unfollowable(path)
    if problem is not None:
        detail, fix = problem
        raise UsageError(
            detail,
            hint=f"{fix}, or choose another out",
            option="out",
            detail=detail,
            cli_hint=f"{fix}, or choose another --out",
        )
    return destination(path)


def _unfollowable(path: Path) -> tuple[str, str] | None:
    """(why, what to do short of writing elsewhere) where writing `path` would need a link it leads
    through to be followed somewhere that cannot be, else None."""
    try:
        os.stat(path)
        return None  # there: whatever it is, the write says what it makes of it
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path} leads through symbolic links that loop", "fix the links"
    # Not there: the nearest part of it that is decides where the file (or its folders) would go.
    nearest = next((part for part in (path, *path.parents) if os.path.lexists(part)), None)
    if nearest is None or not os.path.islink(nearest) or os.path.exists(nearest):
        return None  # no link, or one to a folder that is there: missing folders are made inside it
    target = Path(os.path.realpath(nearest))
    if nearest == path:  # a link to a file still to be written, which goes where it points
        folder = target.parent
        if os.path.isdir(folder):
            return None
        if os.path.lexists(folder):
            return (
                f"{path} is a symbolic link to {target}, and {folder} is not a folder",
                "point the link elsewhere",
            )
        return (
            f"{path} is a symbolic link to {target}, whose folder does not exist",
            f"make {folder} first, point the link elsewhere",
        )
    return (  # a folder on the way that is a link to nothing: its folders are never made there
        f"{path} leads through {nearest}, a symbolic link to {target}, which does not exist",
        f"make {target} first, point the link elsewhere",
    )


def is_stream(path: Path) -> bool:
    """Whether `path` is a device, pipe, socket or one of our open files: something to write into,
    never to rename over."""
    if _descriptor_named(path) is not None:  # another process's is opened, never renamed over
        return True
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_into(path: Path, data: bytes) -> None:
    """`data` into the stream `path` (see `is_stream`): through our open file if it is one."""
    fd = own_descriptor(path)
    if fd is not None:
        write_all(fd, data)
        return
    with open(path, "wb") as f:
        f.write(data)


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename the finished file `tmp` onto `path` so that readers see the old file or the new one.

    A regular file keeps its permissions. A device or pipe (/dev/stdout, a FIFO) is written
    into instead: renaming over it would put a plain file where the device was.
    """
    if is_stream(path):
        write_into(path, tmp.read_bytes())
        tmp.unlink()
        return
    with open(tmp, "rb+") as f:
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
            with contextlib.suppress(OSError):  # a new file keeps the umask's mode
                os.fchmod(f.fileno(), stat.S_IMODE(path.stat().st_mode))
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_folder(path.parent)  # make the rename itself durable


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open or fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def blocking_file(path: Path) -> Path | None:
    """The file among `path`'s nearest existing parents that keeps it from being made, if any."""
    nearest = next((p for p in path.parents if p.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # a full disk, a quota, a file-size limit


def write_hint(exc: OSError, out: str = "--out") -> str:
    """What to do about an output that could not be written: room first, where room was the problem.
    `out` is how the caller names the output: the CLI's --out, or a Python function's argument."""
    if exc.errno in FULL:
        return f"free some disk space (or raise the file-size limit), or choose another {out}"
    return f"choose another {out}"


def write_failure(path: Path, exc: OSError) -> str:
    """Why writing `path` failed, in words: mkdir under a regular file says "File exists"."""
    blocker = blocking_file(path)
    return f"{blocker} is not a folder" if blocker else str(exc.strerror or exc)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old file or the new one, never a mix.

    A symlink is followed (its target is replaced, the link kept); a device or pipe is written
    into directly, as there is nothing there to replace.
    """
    path = destination(path)
    if is_stream(path):
        write_into(path, data)
        return
    with _staged(path, data) as tmp:
        replace_durably(tmp, path)


def is_run_folder(folder: Path) -> bool:
    """Whether `folder` is a training run's: `acgan train` writes config.json and checkpoints/."""
    return (folder / "config.json").is_file() and (folder / "checkpoints").is_dir()


def check_writable(path: Path) -> None:
    """The OSError that `write_atomic(path, ...)` would meet making its folders and temporary file
    (a file where a folder should be, a folder that cannot be written), raised now, before the data is
    made; the folders made for it go again. A device or pipe is left to the write."""
    path = destination(path)
    if not is_stream(path):
        with _staged(path, b""):
            pass


def replace_entry(path: Path, data: bytes) -> None:
    """Replace the folder entry `path` with a file of `data`, so that readers see the old file or
    the new one: a symlink there is replaced, not its target (a run's own records, such as its
    latest checkpoint linked to an older one, which the write went over)."""
    with _staged(path, data) as tmp:
        with open(tmp, "rb+") as f:  # Windows' fsync needs a file open for writing
            os.fsync(f.fileno())
        os.replace(tmp, path)
    _sync_folder(path.parent)


def write_new(path: Path, data: bytes) -> bool:
    """Write `data` as the new file `path`, whole, unless something already has that name: then
    False, and nothing is written. Another process taking the name between a caller's look and
    this write loses nothing (two `acgan sample` runs picking the same free name).

    The finished file is hard-linked into place, which fails on a taken name; a file system
    without hard links gets the file created exclusively and written in place instead.
    """
    with _staged(path, data) as tmp:
        with open(tmp, "rb+") as f:  # Windows' fsync needs a file open for writing
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            # no hard links there: EPERM (FAT on Linux), EINVAL (FAT or SMB on Windows), ...
            no_links = (
                errno.EPERM,
                errno.EINVAL,
                errno.EOPNOTSUPP,
                errno.ENOTSUP,
                errno.EMLINK,
                errno.ENOSYS,
            )
            if exc.errno not in no_links:
                raise
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            except FileExistsError:
                return False
            try:
                with open(fd, "wb") as f:  # and closed
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:  # no half-written file under the name
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
    _sync_folder(path.parent)
    return True


@contextlib.contextmanager
def _staged(path: Path, data: bytes) -> Iterator[Path]:
    """`data` in a temporary beside `path` (the caller syncs it as it puts it in place), removed on
    the way out, whatever became of it; an OSError about the temporary is reported as one about
    `path`, the file the caller named. The folders made for it go again if it was not written."""
    made = [parent for parent in path.parents if not parent.exists()]  # innermost first
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        yield tmp
    except OSError as exc:
        if exc.filename in (None, str(tmp)):  # name the file the caller asked for, not our temporary
            raise OSError(exc.errno, exc.strerror, str(path)) from None  # same subclass, by errno
        raise
    finally:
        with contextlib.suppress(OSError):  # a failing cleanup must not hide why the write failed
            tmp.unlink(missing_ok=True)
        if not path.exists():  # a failed write leaves no empty folders behind (a full disk, ulimit -f)
            for parent in made:
                with contextlib.suppress(OSError):  # one something else was put into meanwhile stays
                    parent.rmdir()
