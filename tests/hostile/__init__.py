"""A corpus of hostile data roots: copies of real roots, each damaged one way.

Roots come from the bundled sample (``examples/sample-root.tar.gz``) and from the
roots the real dockerd made for the oracle tests. Each case copies one, damages
the copy, and runs ``analyze`` on it as an analyst would: in a child process, with
a time limit and a memory limit (a loop that grows without bound fails fast, it
does not take the machine with it). What every case asserts:

- the exit status, and no traceback;
- a warning naming the file that holds the bad value;
- the rest of the analysis intact (the same rows as on the undamaged root);
- the evidence untouched: no entry added or removed, and the mode, size, mtime,
  ctime and atime of every entry as they were (atimes are set back before the run,
  so that any read without ``O_NOATIME`` would move them under ``relatime``).

Deep trees are made and removed here without recursion: Python's own tools
(``shutil.rmtree``, 3.11's ``os.walk``) recurse and fail past ~1000 levels.
"""
from __future__ import annotations

import os
import re
import resource
import stat
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ARCHIVE = REPO / "examples" / "sample-root.tar.gz"
LAYERDB = "image/overlay2/layerdb/sha256"
IMAGEDB = "image/overlay2/imagedb"
REPOSITORIES = "image/overlay2/repositories.json"
# A generous bound for any command on these small roots, even on two busy cores;
# what it catches is a loop, which never ends.
TIMEOUT = 240
MEMORY_LIMIT = 1 << 30
WARNING = re.compile(r"^analyze: warning: (.*)$", re.M)
# The corpus's own walks hold an fd per level of a 10,000-deep tree (analyze does not).
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    out: str
    err: str
    rc: int

    def warnings(self) -> list[str]:
        return WARNING.findall(self.err)

    def warned(self, path: str, *words: str) -> bool:
        """A warning names ``path`` (relative to the root) and says every one of ``words``."""
        return any(w.startswith(f"{path}:") and all(x in w for x in words)
                   for w in self.warnings())

    def check(self, rc: int = 0) -> "Result":
        assert "Traceback" not in self.err, self.describe()
        assert self.rc == rc, self.describe()
        return self

    def describe(self) -> str:
        return (f"analyze {' '.join(self.args)}: exit {self.rc}\n--- stdout\n{self.out[:3000]}"
                f"\n--- stderr\n{self.err[-3000:]}")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    # The usual default: a walk that keeps an fd per level runs out far above it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def analyze(root: str | os.PathLike, *args: str, timeout: float = TIMEOUT) -> Result:
    """``python -m analyzer --data-root ROOT --as-of <fixed> ARGS`` in a bounded child."""
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "analyzer", "--data-root", str(root),
            "--as-of", "2026-01-01T00:00:00Z", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, env=env, cwd=REPO, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=_limits)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"analyze {' '.join(args)} on {root}: still running after "
                             f"{timeout}s (a loop?)\n{(exc.stderr or b'')[-2000:]!r}") from None
    # Where the root is (inspect prints it) is no part of the answer.
    out, err = (text.decode("utf-8", "replace").replace(os.fspath(root), "<root>")
                for text in (proc.stdout, proc.stderr))
    return Result(tuple(args), out, err, proc.returncode)


# -- the evidence, untouched ---------------------------------------------------------------
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOATIME


def walk(top: Path) -> Iterator[tuple[str, os.stat_result, int, str]]:
    """(path, lstat, fd of its directory, name) of every entry below top, top itself
    first as ("", lstat, AT_FDCWD, top). Iterative and through fds (paths soon pass
    PATH_MAX); directories are read with O_NOATIME, so looking leaves no trace."""
    yield "", os.lstat(top), AT_FDCWD, os.fspath(top)
    fd = os.open(top, _O_DIR)
    stack = [(fd, "", iter(os.listdir(fd)))]
    try:
        while stack:
            fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            path = f"{rel}/{name}" if rel else name
            yield path, st, fd, name
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, _O_DIR, dir_fd=fd)
                stack.append((sub, path, iter(os.listdir(sub))))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


AT_FDCWD = -100


def age_atimes(top: Path) -> None:
    """Set every atime a day before its mtime: any read that is not O_NOATIME then moves it.

    Symbolic links excepted: readlink(2) has no O_NOATIME (the kernel touches the link's
    atime on every read of its target), so under relatime a link whose atime is older
    than its mtime or ctime, or than a day, gets a new one when verify compares its
    target. Their atimes are set an hour ahead, where relatime leaves them, and are still
    checked unchanged.
    """
    ahead = time.time_ns() + 3600 * 10**9
    for _, st, fd, name in walk(top):
        atime = ahead if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns - 86400 * 10**9
        os.utime(name, ns=(atime, st.st_mtime_ns), dir_fd=None if fd == AT_FDCWD else fd,
                 follow_symlinks=False)


def evidence_state(top: Path) -> dict[str, tuple[int, int, int, int, int]]:
    return {rel: (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_atime_ns)
            for rel, st, _, _ in walk(top)}


def assert_untouched(top: Path, before: dict) -> None:
    after = evidence_state(top)
    added = sorted(after.keys() - before.keys())
    gone = sorted(before.keys() - after.keys())
    changed = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    assert not (added or gone or changed), (
        f"the evidence changed: added {added[:5]}, removed {gone[:5]}, "
        f"changed {[(p, before[p], after[p]) for p in changed[:5]]}")


class Evidence:
    """A damaged root ready to read: ``run`` analyzes it; ``untouched`` checks it afterwards."""

    def __init__(self, path: Path):
        self.path = path
        self._state: dict | None = None

    def seal(self) -> "Evidence":
        """Damage done: age the atimes and record the state every run must leave."""
        age_atimes(self.path)
        self._state = evidence_state(self.path)
        return self

    def run(self, *args: str, timeout: float = TIMEOUT) -> Result:
        if self._state is None:
            self.seal()
        result = analyze(self.path, *args, timeout=timeout)
        self.untouched()
        return result

    def untouched(self) -> None:
        assert self._state is not None
        assert_untouched(self.path, self._state)


# -- making and removing roots ------------------------------------------------------------
def extract_sample(dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(SAMPLE_ARCHIVE) as tf:
        tf.extractall(dest, filter="tar")
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", "--one-file-system", str(src), str(dest)], check=True,
                   capture_output=True)
    return dest


def remove_tree(top: Path) -> None:
    """rm -rf without recursion (a hostile root may be 10,000 directories deep)."""
    if not top.exists() and not top.is_symlink():
        return
    subprocess.run(["rm", "-rf", "--one-file-system", str(top)], check=True)


def nest(top: Path, depth: int, name: str = "d", leaf: bytes | None = b"deep\n") -> str:
    """depth directories, each in the last, below top; a file at the bottom. Returns the
    path of the deepest directory relative to top. Made relative to an fd, since the
    path soon passes PATH_MAX."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        if leaf is not None:
            wfd = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(wfd, leaf)
            os.close(wfd)
    finally:
        os.close(fd)
    return "/".join([name] * depth)


def write(path: Path, data: bytes | str) -> None:
    """Replace a file's content in place (the copy is ours to damage)."""
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines()[1:] if line.strip()]


# -- finding what to damage, from the files themselves ----------------------------------
def image_id(root: Path, ref: str) -> str:
    """The image ID (``sha256:…``) repositories.json gives a ``name:tag``."""
    import json
    repos = json.loads((root / REPOSITORIES).read_text())["Repositories"]
    forms = {ref, f"docker.io/{ref}", f"docker.io/library/{ref}"}
    for entries in repos.values():
        for key, value in entries.items():
            if key in forms:
                return value
    raise KeyError(ref)


def layer_chain(root: Path, ref_or_id: str) -> list[str]:
    """Chain IDs (64 hex) of an image's layers, bottom first."""
    import hashlib
    import json
    iid = ref_or_id if ref_or_id.startswith("sha256:") else image_id(root, ref_or_id)
    config = json.loads((root / IMAGEDB / "content/sha256" / iid[7:]).read_bytes())
    chain: str | None = None
    out = []
    for diff_id in config["rootfs"]["diff_ids"]:
        chain = diff_id if chain is None else "sha256:" + hashlib.sha256(
            f"{chain} {diff_id}".encode()).hexdigest()
        out.append(chain[7:])
    return out


def cache_id(root: Path, chain_hex: str) -> str:
    return (root / LAYERDB / chain_hex / "cache-id").read_text().strip()


def images_using(root: Path, chain_hex: str) -> list[str]:
    """Image IDs (64 hex) whose chain holds this layer."""
    ids = os.listdir(root / IMAGEDB / "content/sha256")
    return [i for i in ids if chain_hex in layer_chain(root, "sha256:" + i)]


def rows_without(text: str, hex_ids: list[str]) -> list[str]:
    """Table rows (header dropped) that name none of these IDs, by their 12-hex short form,
    as lists of cells: without a row, the columns it widened are narrower."""
    shorts = [h[:12] for h in hex_ids]
    return [re.split(r"\s{2,}", row.strip()) for row in table_rows(text)
            if not any(s in row for s in shorts)]


def rewrite_config(root: Path, image_hex: str, change) -> str:
    """Change an image's config and file it under its new ID, as a forger would: the ID
    still hashes the bytes, references and metadata follow. Returns the new ID (64 hex)."""
    import hashlib
    import json
    content = root / IMAGEDB / "content/sha256"
    config = json.loads((content / image_hex).read_bytes())
    change(config)
    data = json.dumps(config).encode()
    new = hashlib.sha256(data).hexdigest()
    (content / new).write_bytes(data)
    (content / image_hex).unlink()
    meta = root / IMAGEDB / "metadata/sha256" / image_hex
    if meta.exists():
        meta.rename(meta.with_name(new))
    repos = root / REPOSITORIES
    repos.write_text(repos.read_text().replace(image_hex, new))
    return new


def edit_json(path: Path, change) -> None:
    import json
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_text(json.dumps(doc))


def set_field(doc: dict, dotted: str, value) -> None:
    """doc["A"]["B"] = value for "A.B"; a missing level becomes an object."""
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[last] = value
