"""Record the real Docker CLI's output on each scenario, once, and compare ``analyze`` with it.

Recording (``record_scenario``): start a daemon (and a loopback registry when the
scenario pulls), populate it, run every read-only command with the wall times
around it, snapshot the data root, then run the ``image rm`` / ``image prune``
cases in order, each with a snapshot taken just before it and the ``du`` of the
live root before and after (containerd's garbage collection forced first, see
``Daemon.settle``). One JSON file per scenario, in a cache directory keyed by a
hash of the oracle's sources; scenarios are recorded in parallel, one daemon each.

Comparing (``check_command``, ``check_rm_output``, ``check_rm_bytes``): run
``python -m analyzer --data-root SNAPSHOT --as-of T ...`` and accept its output if
it matches Docker's for some T that Docker could have seen. Where Docker itself
orders rows at random, rows are compared as multisets (see ``_runs``).

Run by hand: ``python -m tests.oracle.record [--cache DIR] [SCENARIO...]``.
"""
from __future__ import annotations

import argparse
import difflib
import fcntl
import functools
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from .daemon import JUDGES, Daemon, Registry
from .scenarios import PLACEHOLDER, SCENARIOS, Context, Scenario, expand, unix_seconds

ORACLE_DIR = Path(__file__).resolve().parent
REPO = ORACLE_DIR.parent.parent
SAMPLE_TRUTH = REPO / "tests" / "fixtures" / "sample-root-truth.json"
CACHE_ENV = "ANALYZER_ORACLE_CACHE"
_CACHE_MARKER = ".analyzer-oracle"

# Commands recorded on every scenario, before its own (argv after "docker").
GENERIC_COMMANDS: list[list[str]] = [
    ["image", "ls"],
    ["image", "ls", "-a"],
    ["image", "ls", "-q"],
    ["image", "ls", "-a", "-q"],
    ["image", "ls", "-q", "--no-trunc"],
    ["image", "ls", "--digests"],
    ["image", "ls", "-a", "--digests"],
    ["image", "ls", "--no-trunc"],
    ["image", "ls", "-a", "--no-trunc", "--digests"],
    ["image", "ls", "-f", "dangling=true"],
    ["image", "ls", "-f", "dangling=false"],
    ["image", "ls", "-a", "-f", "dangling=true"],
    ["image", "ls", "-a", "-f", "dangling=false"],
    ["image", "ls", "-q", "-f", "dangling=true"],
    ["image", "ls", "--format", "json"],
    ["image", "ls", "-a", "--format", "json"],
    ["image", "ls", "--digests", "--format", "json"],
    ["image", "ls", "--format", "table"],
    ["ps"],
    ["ps", "-a"],
    ["ps", "-q"],
    ["ps", "-a", "-q"],
    ["ps", "-a", "--no-trunc"],
    ["ps", "--format", "json"],
    ["ps", "-a", "--format", "json"],
    ["system", "df"],
    ["system", "df", "-v"],
    ["image", "history", "missing:1"],
    ["image", "inspect", "{ambiguous}"],
]

# docker argv prefix -> analyze subcommand (the other prunes are spelled as Docker's).
_ANALYZE = {("image", "ls"): ("ls",), ("image", "history"): ("history",),
            ("image", "inspect"): ("inspect",), ("system", "df"): ("df",),
            ("image", "rm"): ("rm",), ("image", "prune"): ("prune",), ("ps",): ("ps",),
            ("diff",): ("diff",), ("export",): ("export",), ("cp",): ("cp",),
            **{(noun, "prune"): (noun, "prune")
               for noun in ("container", "volume", "network", "system", "builder")}}

# Keys of `docker image inspect` that `analyze inspect` need not reproduce, with why.
INSPECT_EXEMPT: dict[str, str] = {}


def analyze_args(docker_argv: Sequence[str]) -> list[str]:
    """The ``analyze`` arguments standing for a docker command (options unchanged)."""
    for prefix, sub in _ANALYZE.items():
        if tuple(docker_argv[:len(prefix)]) == prefix:
            return [*sub, *docker_argv[len(prefix):]]
    raise ValueError(f"no analyze equivalent for docker {' '.join(docker_argv)}")


def is_json_inspect(args: Sequence[str]) -> bool:
    """``inspect`` printing its JSON (not a --format template)."""
    return args[0] == "inspect" and not {"-f", "--format"} & set(args)


def kind_of(docker_argv: Sequence[str]) -> str:
    return analyze_args(docker_argv)[0]


# analyze subcommands that read layers' files (contents, RW layers' sizes): on a root
# whose driver analyze reads metadata only of (Scenario.layer_files False), refused.
_LAYER_FILE_KINDS = ("df", "diff", "export", "cp", "container", "system")


def reads_layer_files(docker_argv: Sequence[str]) -> bool:
    args = analyze_args(docker_argv)
    return args[0] in _LAYER_FILE_KINDS or (args[0] == "ps" and bool({"-s", "--size"} & set(args)))


def commands_for(scenario: Scenario) -> list[list[str]]:
    return [*(GENERIC_COMMANDS if scenario.generic else ()), *map(list, scenario.commands)]


# -- the cache -------------------------------------------------------------------------
def oracle_key() -> str:
    """A hash of the oracle's sources: what decides what a recording holds."""
    h = hashlib.sha256()
    for path in sorted(ORACLE_DIR.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_root() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else None


def keyed_cache(cache: Path) -> Path:
    """``cache``'s directory for the oracle's current sources (older ones dropped)."""
    cache.mkdir(parents=True, exist_ok=True)
    base = cache / oracle_key()
    _drop_stale(cache, keep=base.name)
    base.mkdir(exist_ok=True)
    (base / _CACHE_MARKER).touch()
    return base


def ensure_recorded(cache: Path, names: Sequence[str] | None = None,
                    log: Callable[[str], None] = lambda s: None) -> dict[str, "Recording"]:
    """Load each scenario's recording from ``cache``, recording what is missing."""
    base = keyed_cache(cache)
    names = list(names or SCENARIOS)

    def one(name: str) -> None:
        shutil.rmtree(base / name, ignore_errors=True)   # a recording cut short
        t0 = time.monotonic()
        record_scenario(SCENARIOS[name], base)
        log(f"recorded {name} in {time.monotonic() - t0:.1f}s")

    with recording_lock(base / ".scenarios.lock"):
        missing = [n for n in names if not (base / f"{n}.json").exists()]
        # Each scenario has its own daemon; they wait on I/O, so they overlap well.
        with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
            for future in [pool.submit(one, n) for n in missing]:
                future.result()
    return {n: Recording.load(base / f"{n}.json") for n in names}


@contextmanager
def recording_lock(path: Path) -> Iterator[None]:
    """Held while a cache is checked and filled, so that what is missing is recorded
    once: pytest-xdist's workers share one cache (tests/conftest.py), and so may two
    sessions given the same ANALYZER_ORACLE_CACHE. The others wait, then load it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # the lock goes with the descriptor


def _drop_stale(cache: Path, keep: str) -> None:
    for child in cache.iterdir():
        if child.name != keep and (child / _CACHE_MARKER).exists():
            shutil.rmtree(child, ignore_errors=True)


# -- recording -------------------------------------------------------------------------
def timed(d: Daemon, argv: Sequence[str]) -> dict:
    """Run one docker command; its output, exit status and the wall times around it.
    ``docker export``'s archive is kept as its members (``tar_members``)."""
    t_before = time.time()
    if argv[0] == "cp":
        with tempfile.TemporaryDirectory(prefix="oracle-cp-") as tmp:
            proc = d.docker(*argv, f"{tmp}/out")
            stdout = tree_members(Path(tmp, "out")) if proc.returncode == 0 else proc.stdout
    elif argv[0] == "export":
        with tempfile.TemporaryDirectory(prefix="oracle-export-") as tmp:
            proc = d.docker(*argv, "-o", f"{tmp}/out.tar")
            stdout = tar_members(Path(tmp, "out.tar").read_bytes()) if proc.returncode == 0 \
                else proc.stdout
    else:
        proc = d.docker(*argv)
        stdout = proc.stdout
    t_after = time.time()
    return {"docker": list(argv), "stdout": stdout, "stderr": proc.stderr,
            "rc": proc.returncode, "t_before": t_before, "t_after": t_after}


def tree_members(top: Path) -> str:
    """A copied tree as sorted lines — path, type and permission bits, size, link
    target, content sha256 — without owners and mtimes (``cp`` keeps neither by default)."""
    lines = []
    for path in [top, *sorted(top.rglob("*"))]:
        st = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() \
            and not path.is_symlink() else "-"
        link = os.readlink(path) if path.is_symlink() else ""
        lines.append(f"{path.relative_to(top.parent)} {st.st_mode:o} "
                     f"{st.st_size if not path.is_dir() or path.is_symlink() else 0} "
                     f"{link!r} {content}")
    return "".join(f"{line}\n" for line in sorted(lines))


def tar_members(data: bytes) -> str:
    """A tar's members as sorted lines — name, type, mode, owner, size, link target,
    device, content sha256, extended attributes — without mtimes (they differ run to run)."""
    lines = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            content = tar.extractfile(m).read() if m.isreg() else b""
            xattrs = sorted((k, v) for k, v in m.pax_headers.items()
                            if k.startswith("SCHILY.xattr."))
            lines.append(f"{m.name} {m.type.decode()} {m.mode:o} {m.uid}:{m.gid} {m.size} "
                         f"{m.linkname!r} {m.devmajor}:{m.devminor} "
                         f"{hashlib.sha256(content).hexdigest() if m.isreg() else '-'} "
                         f"{xattrs!r}")
    return "".join(f"{line}\n" for line in sorted(lines))


def image_times(d: Daemon) -> dict[str, int]:
    """Every image's ID (64 hex) -> Created in Unix seconds, as `image ls` sorts by."""
    ids = sorted(set(d.run("image", "ls", "-aq", "--no-trunc").split()))
    if not ids:
        return {}
    # Docker 28 leaves out a zero Created (20.10 prints Go's zero time).
    return {info["Id"][7:]: unix_seconds(info.get("Created", "0001-01-01T00:00:00Z"))
            for info in d.inspect("image", *ids)}


def container_states(d: Daemon) -> dict[str, dict]:
    """Every container's name -> its `docker container inspect` Created and State
    (times, exit code, health checks) as the daemon reports them."""
    ids = d.run("ps", "-aq", "--no-trunc").split()
    return {c["Name"].lstrip("/"): {"Id": c["Id"], "Image": c["Image"],
                                    "Created": c["Created"], "State": c["State"]}
            for c in (d.inspect("container", *ids) if ids else ())}


def record_scenario(scenario: Scenario, base: Path) -> dict:
    """Build ``scenario`` on a fresh daemon, record everything, write ``<name>.json``."""
    out_dir = base / scenario.name
    out_dir.mkdir(parents=True)
    timings = {}
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="oracle-ctx-"))
        reg = stack.enter_context(Registry()) if scenario.uses_registry else None
        t0 = time.monotonic()
        d = stack.enter_context(Daemon(
            judge=JUDGES[scenario.judge], registry_mirror=reg.url if reg else None,
            insecure_registries=[reg.address] if reg else ()))
        timings["start"] = time.monotonic() - t0
        t0 = time.monotonic()
        scenario.populate(d, Context(random.Random(scenario.seed), workdir, reg))
        d.settle()
        timings["populate"] = time.monotonic() - t0

        t0 = time.monotonic()
        created = image_times(d)
        commands = []
        for template in commands_for(scenario):
            entry = timed(d, [expand(d, a) for a in template])
            commands.append({"template": template, **entry})
        d.settle()
        containers = container_states(d)
        root = d.snapshot(out_dir / "root")
        timings["commands"] = time.monotonic() - t0

        t0 = time.monotonic()
        rm_cases = []
        for i, template in enumerate(scenario.rm_cases):
            argv = [expand(d, a) for a in template]
            snap = d.snapshot(out_dir / "rm" / f"{i:02d}")
            du_before = d.du()
            entry = timed(d, argv)
            d.settle()
            du_after = d.du()
            rm_cases.append({"template": list(template), **entry,
                             "root": str(snap.relative_to(base)),
                             "du_before": du_before, "du_after": du_after})
        timings["rm"] = time.monotonic() - t0
        data = {"scenario": scenario.name, "seed": scenario.seed, "judge": scenario.judge,
                "server_version": d.server_version,
                "containerd_version": d.containerd_version, "live_root": str(d.docker_root),
                "root": str(root.relative_to(base)), "created": created,
                "containers": containers,
                "commands": commands, "rm": rm_cases, "timings": timings}
        t0 = time.monotonic()
    timings["stop"] = time.monotonic() - t0
    path = base / f"{scenario.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.rename(path)
    return data


@dataclass
class Recording:
    """One scenario's recorded truth; paths resolved against where it was loaded from."""
    data: dict
    base: Path

    @classmethod
    def load(cls, path: Path) -> "Recording":
        return cls(json.loads(path.read_text()), path.parent)

    @property
    def name(self) -> str:
        return self.data["scenario"]

    @property
    def root(self) -> Path:
        return (self.base / self.data["root"]).resolve()

    def rm_root(self, case: dict) -> Path:
        return (self.base / case["root"]).resolve()

    @property
    def created(self) -> dict[str, int]:
        return self.data["created"]


# -- test parameters -----------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One recorded command of one scenario, known before anything is recorded."""
    scenario: str
    index: int
    template: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.scenario}-{self.index:02d}:{' '.join(self.template)}"


def scenarios(containerd_store: bool = False) -> list[Scenario]:
    """The scenarios whose judge keeps images in a graph driver, or in containerd."""
    return [s for s in SCENARIOS.values()
            if JUDGES[s.judge].containerd_store == containerd_store]


# What analyze answers on the containerd image store.
CONTAINERD_KINDS = ("ls", "ps", "history", "inspect", "df", "rm", "prune", "diff", "export",
                    "cp")


def _chosen(containerd_store: bool | None, kind: str) -> list[Scenario]:
    if containerd_store is not None:
        return scenarios(containerd_store)
    return scenarios(False) + (scenarios(True) if kind in CONTAINERD_KINDS else [])


def cases(kind: str, containerd_store: bool | None = None) -> list[Case]:
    """The recorded read-only commands whose analyze subcommand is ``kind``: on every
    scenario analyze answers it for (``containerd_store`` None), or on one kind of store."""
    return [Case(s.name, i, tuple(t)) for s in _chosen(containerd_store, kind)
            for i, t in enumerate(commands_for(s))
            if kind_of(t) == kind and (s.layer_files or not reads_layer_files(t))]


def refused_cases() -> list[Case]:
    """The recorded commands analyze refuses by name: they read layer files of a driver
    it reads the metadata of only."""
    return [Case(s.name, i, tuple(t)) for s in SCENARIOS.values() if not s.layer_files
            for i, t in enumerate(commands_for(s)) if reads_layer_files(t)]


def rm_cases(containerd_store: bool | None = None, priced: bool = False) -> list[Case]:
    """The rm and prune cases; ``priced``: only where analyze measures the bytes freed."""
    return [Case(s.name, i, tuple(t)) for s in _chosen(containerd_store, "rm")
            if s.layer_files or not priced for i, t in enumerate(s.rm_cases)]


# -- running analyze -----------------------------------------------------------------
def run_analyze(root: str | os.PathLike, as_of: float, args: Sequence[str],
                timeout: float = 300) -> tuple[str, str, int]:
    """``python -m analyzer --data-root ROOT --as-of AS_OF ARGS``: (stdout, stderr, rc)."""
    env = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "--data-root", str(root), "--as-of",
         _as_of_arg(as_of), *args],
        capture_output=True, env=env, cwd=REPO, timeout=timeout, stdin=subprocess.DEVNULL)
    return (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
            proc.returncode)


def _as_of_arg(as_of: float) -> str:
    return str(as_of) if isinstance(as_of, int) else f"{as_of:.3f}"


def time_candidates(t_before: float, t_after: float) -> list[float]:
    """Times at which Docker could have rendered the output, in order: the integer
    seconds around the command, and points inside it for durations that Docker
    measured from nanosecond timestamps (a container's "Up 3 seconds")."""
    ints = range(math.floor(t_before), math.ceil(t_after) + 1)
    # A quarter of a second apart, so that every second-wide window of each cell is hit
    # however long the command took (cells are matched one by one: _row_by_row).
    steps = min(int((t_after - t_before) * 4) + 1, 40)
    inside = [*(t_before + (t_after - t_before) * k / steps for k in range(steps)), t_after]
    return sorted({*ints, *inside})


Compare = Callable[[str, str, int], "str | None"]


def match_over_time(root: Path, entry: dict, args: Sequence[str], compare: Compare) -> None:
    """Pass if ``analyze ARGS`` at some candidate time satisfies ``compare``, or if every
    cell of Docker's output is printed so at some candidate time (``_row_by_row``).

    Every time-dependent field is non-decreasing in ``--as-of``; so when two candidate
    times give the same output, every candidate between them gives it too. The distinct
    outputs of all the candidates are therefore found by bisection: analyze is run at
    the middle of a span of candidates only where the span's two ends differ (a few runs
    where each of up to 40 candidates was run before).
    """
    candidates = time_candidates(entry["t_before"], entry["t_after"])
    outputs: dict[int, tuple[str, str, int]] = {}
    tried: dict[tuple, str | None] = {}
    closest = None

    def at(i: int) -> tuple[str, str, int]:
        nonlocal closest
        if i in outputs:
            return outputs[i]
        result = outputs[i] = run_analyze(root, candidates[i], args)
        if result not in tried:
            diff = tried[result] = compare(*result)
            report = f"analyze --as-of {_as_of_arg(candidates[i])} {' '.join(args)}\n{diff}"
            if diff is not None and (closest is None or len(report) < len(closest)):
                closest = report
        return result

    def matched() -> bool:
        return None in tried.values()

    # First the command's end, where the Docker CLI formats its output (Docker's own
    # instant, but for the CLI's exit): most outputs match there at once.
    end = candidates.index(entry["t_after"])
    at(end)
    spans = [(0, end), (end, len(candidates) - 1)]
    while spans and not matched():
        lo, hi = spans.pop(0)
        if at(lo) != at(hi) and hi - lo > 1 and not matched():
            mid = (lo + hi) // 2
            at(mid)
            spans += [(lo, mid), (mid, hi)]
    if matched():
        return
    if len(tried) > 1 and compare(*_row_by_row(entry["stdout"], list(tried))) is None:
        return
    pytest.fail(closest, pytrace=False)


def _row_by_row(want: str, results: list[tuple[str, str, int]]) -> tuple[str, str, int]:
    """One output whose every cell is taken from whichever candidate time printed it as
    Docker did: the Docker CLI formats each "N seconds ago" at its own instant (a row of
    `df -v`'s build cache has two), so one cell may read a second later than the others."""
    out, err, rc = results[0]
    rows = [r[0].split("\n") for r in results if r[1:] == (err, rc)]
    wanted = want.split("\n")
    if any(len(r) != len(wanted) for r in rows):
        return out, err, rc
    return "\n".join(_cell_by_cell(line, [r[i] for r in rows])
                     for i, line in enumerate(wanted)), err, rc


# A table's cells are apart by two spaces or more; a JSON line's (`--format json`) are
# its string fields, apart at `","`.
_CELL_GAP = re.compile(r'(\s{2,}|",")')


def _cell_by_cell(want: str, lines: list[str]) -> str:
    """``want`` if each of its cells (and the gaps between them) is printed at the same
    place by some candidate; else the first candidate's line."""
    if want in lines:
        return want
    cells = _CELL_GAP.split(want)
    split = [_CELL_GAP.split(line) for line in lines]
    if all(len(c) == len(cells) for c in split) and all(
            any(c[k] == cell for c in split) for k, cell in enumerate(cells)):
        return want
    return lines[0]


# -- comparisons ---------------------------------------------------------------------
def _diff(label: str, want: str, got: str) -> str:
    lines = difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                 f"docker {label}", f"analyze {label}")
    return "".join(lines) or f"{label}: {want!r} != {got!r}"


def _status_diff(entry: dict, err: str, rc: int) -> str | None:
    if rc != entry["rc"]:
        return f"exit status: docker {entry['rc']}, analyze {rc}\nstderr: {err}"
    if err != entry["stderr"]:
        return _diff("stderr", entry["stderr"], err)
    return None


_HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{12}(?:[0-9a-f]{52})?(?![0-9a-f])")
# `system df -v` section titles; the volumes section is listed in Go map order.
_DF_SECTIONS = {"Images space usage:": "images", "Containers space usage:": "containers",
                "Local Volumes space usage:": "volumes"}


def _runs(text: str, created: dict[str, int], kind: str) -> list:
    """Lines as runs whose order is compared but not the order inside them.

    Docker sorts images by Created seconds with an unstable sort and orders one image's
    references across repositories at random, so consecutive image rows created in the
    same second form one multiset; `df -v` lists volumes in map order, so its volume
    rows form one multiset; every other line stands alone.
    """
    by_short = {hex_id[:12]: t for hex_id, t in created.items()}
    section = "images" if kind == "ls" else None
    runs: list = []
    for i, line in enumerate(text.split("\n")):
        if kind == "df" and line in _DF_SECTIONS:
            section = _DF_SECTIONS[line]
        elif kind == "df" and line.startswith("Build cache usage:"):
            section = None
        key = None
        if section == "images" and not line and runs and runs[-1][0][0] == "created":
            key = runs[-1][0]          # a row's own blank line (a template's {{println}})
        elif section == "images":
            key = next((("created", by_short[h[:12]]) for h in _HEX_ID.findall(line)
                        if h[:12] in by_short), None)
        elif section == "volumes" and line and not line.startswith("VOLUME NAME"):
            key = ("volumes",)
        if key is not None and runs and runs[-1][0] == key:
            runs[-1][1].append(line)
        else:
            runs.append((key or ("line", i), [line]))
    return [(k, sorted(lines)) for k, lines in runs]


def compare_text(entry: dict, created: dict[str, int], kind: str) -> Compare:
    """Byte-exact, except rows whose order Docker leaves to chance (`ls`, `df -v`)."""
    want = entry["stdout"]

    def compare(out: str, err: str, rc: int) -> str | None:
        status = _status_diff(entry, err, rc)
        if status:
            return status
        if out == want:
            return None
        if kind in ("ls", "df") and _runs(out, created, kind) == _runs(want, created, kind):
            return None
        # The naive diff (vfs) lists changes in Go's map order: compared as a multiset.
        if kind == "diff" and sorted(out.splitlines()) == sorted(want.splitlines()):
            return None
        return _diff("stdout", want, out)
    return compare


def _map_paths(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_map_paths(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _map_paths(v, old, new) for k, v in value.items()}
    return value


def compare_inspect(entry: dict, live_root: str, root: Path) -> Compare:
    """Every key Docker prints, with its value, is in ours (extra keys allowed at the
    top of each element); GraphDriver paths name the snapshot instead of the live root."""
    want = _map_paths(json.loads(entry["stdout"]), live_root, str(root))

    def compare(out: str, err: str, rc: int) -> str | None:
        status = _status_diff(entry, err, rc)
        if status:
            return status
        try:
            got = json.loads(out)
        except ValueError as e:
            return f"stdout is not JSON ({e}):\n{out}"
        if not isinstance(got, list) or len(got) != len(want):
            return _diff("stdout", entry["stdout"], out)
        problems = []
        for n, (w, g) in enumerate(zip(want, got)):
            for key, value in w.items():
                if key in INSPECT_EXEMPT:
                    continue
                if key not in g:
                    problems.append(f"[{n}].{key}: missing")
                elif g[key] != value:
                    problems.append(f"[{n}].{key}: docker {json.dumps(value)} "
                                    f"analyze {json.dumps(g[key])}")
        return "\n".join(problems) or None
    return compare


def _prune_lines(text: str) -> list:
    """A prune's blocks ("Deleted Images:", "Deleted Containers:", ... in the order the
    CLI prints them), the lines of each as a multiset (the daemon's order is map or
    list order), and the rest line by line."""
    out: list = []
    block: list[str] | None = None
    for line in text.split("\n"):
        if block is not None and line:
            block.append(line)
            continue
        if block is not None:
            out[-1] = (out[-1][0], sorted(block))
            block = None
        if line.startswith("Deleted ") and line.endswith(":"):
            block = []
            out.append((line, block))
        else:
            out.append(line)
    if block is not None:
        out[-1] = (out[-1][0], sorted(block))
    return out


def compare_rm(entry: dict) -> Compare:
    prune = "prune" in entry["docker"][:2]

    def compare(out: str, err: str, rc: int) -> str | None:
        status = _status_diff(entry, err, rc)
        if status:
            return status
        if out == entry["stdout"]:
            return None
        if prune and _prune_lines(out) == _prune_lines(entry["stdout"]):
            return None
        return _diff("stdout", entry["stdout"], out)
    return compare


# -- what the tests call -------------------------------------------------------------
def check_command(rec: Recording, index: int) -> None:
    """Assert that analyze prints what Docker printed for read-only command ``index``."""
    entry = rec.data["commands"][index]
    args = analyze_args(entry["docker"])
    if is_json_inspect(args):
        compare = compare_inspect(entry, rec.data["live_root"], rec.root)
    else:
        compare = compare_text(entry, rec.created, args[0])
    match_over_time(rec.root, entry, args, compare)


def check_export(rec: Recording, index: int, name: str | None = None) -> None:
    """``analyze export NAME -o FILE`` holds the members `docker export` wrote for
    command ``index`` (NAME: the container it exported, or an image to compare with a
    container created from it)."""
    entry = rec.data["commands"][index]
    with tempfile.TemporaryDirectory(prefix="analyze-export-") as tmp:
        out = Path(tmp, "out.tar")
        _, err, rc = run_analyze(rec.root, entry["t_after"],
                                 ["export", name or entry["docker"][1], "-o", str(out)])
        assert rc == entry["rc"], f"exit {rc}, Docker's {entry['rc']}\n{err}"
        if rc == 0:
            got = tar_members(out.read_bytes())
            assert got == entry["stdout"], _diff("members", entry["stdout"], got)


def check_cp(rec: Recording, index: int) -> None:
    """``analyze cp SRC DEST`` makes the tree `docker cp` made for command ``index``."""
    entry = rec.data["commands"][index]
    with tempfile.TemporaryDirectory(prefix="analyze-cp-") as tmp:
        out = Path(tmp, "out")
        _, err, rc = run_analyze(rec.root, entry["t_after"], [*entry["docker"], str(out)])
        assert rc == entry["rc"], f"exit {rc}, Docker's {entry['rc']}\n{err}"
        if rc == 0:
            got = tree_members(out)
            assert got == entry["stdout"], _diff("tree", entry["stdout"], got)


def check_rm_output(rec: Recording, index: int) -> None:
    """``analyze rm|prune`` on the snapshot before case ``index`` prints what Docker did."""
    entry = rec.data["rm"][index]
    match_over_time(rec.rm_root(entry), entry, analyze_args(entry["docker"]),
                    compare_rm(entry))


def freed_args(docker_argv: Sequence[str]) -> list[str]:
    """``rm ARGS`` -> ``reclaim ARGS --json``; ``... prune ARGS`` -> ``... prune ARGS --json``."""
    args = analyze_args(docker_argv)
    return ["reclaim" if args[0] == "rm" else args[0], *args[1:], "--json"]


BLOCK = 4096
# BuildKit's bbolt files, which a prune of the build cache rewrites (records, solver
# cache keys, leases, snapshots): each may take a new page du sees and no answer can
# foresee (bbolt's free list decides).
BUILDKIT_DATABASES = 4


def check_rm_bytes(rec: Recording, index: int, tolerance: int = BLOCK) -> None:
    """``bytes_freed`` is within ``tolerance`` of what ``du`` of the live root lost (a
    block more for each BuildKit database when the build cache is pruned); a prune
    Docker refused is refused with --json too (same exit status, nothing freed)."""
    entry = rec.data["rm"][index]
    lost = entry["du_before"] - entry["du_after"]
    args = freed_args(entry["docker"])
    if args[:2] in (["builder", "prune"], ["system", "prune"]):
        tolerance += BLOCK * BUILDKIT_DATABASES

    def compare(out: str, err: str, rc: int) -> str | None:
        if "prune" in args[:2] and entry["rc"] != 0:
            return None if rc == entry["rc"] and not out else \
                f"docker refused (exit {entry['rc']}); analyze exit {rc}:\n{out}\n{err}"
        try:
            freed = json.loads(out)["bytes_freed"]
        except (ValueError, KeyError, TypeError) as e:
            return f"no bytes_freed in JSON ({e!r}), exit {rc}:\n{out}\n{err}"
        if abs(freed - lost) > tolerance:
            return f"bytes_freed {freed}, du lost {lost} (tolerance {tolerance})"
        return None
    match_over_time(rec.rm_root(entry), entry, args, compare)


def problems(rec: Recording) -> list[str]:
    """What is wrong with a recording itself: every command ran as written (no usage
    errors), every snapshot exists, and Docker's own output passes each comparison."""
    found = []
    entries = [("command", e) for e in rec.data["commands"]]
    entries += [("rm", e) for e in rec.data["rm"]]
    for what, entry in entries:
        label = f"{rec.name} {what} docker {' '.join(entry['docker'])}"
        if "Usage:" in entry["stderr"] or "unknown flag" in entry["stderr"]:
            found.append(f"{label}: the CLI rejected it: {entry['stderr']}")
        if any(PLACEHOLDER.search(a) for a in entry["docker"]):
            found.append(f"{label}: placeholder left unexpanded")
        if what == "rm":
            root, compare = rec.rm_root(entry), compare_rm(entry)
        elif is_json_inspect(analyze_args(entry["docker"])):
            root = rec.root
            compare = compare_inspect(entry, rec.data["live_root"], root)
            entry = {**entry, "stdout": entry["stdout"].replace(rec.data["live_root"],
                                                                 str(root))}
        else:
            root, compare = rec.root, compare_text(entry, rec.created, kind_of(entry["docker"]))
        if not root.exists():
            found.append(f"{label}: no snapshot at {root}")
        diff = compare(entry["stdout"], entry["stderr"], entry["rc"])
        if diff is not None:
            found.append(f"{label}: Docker's own output does not pass:\n{diff}")
    return found


@functools.cache
def load_sample_truth() -> Recording:
    """The sample root's recorded truth; its root is ``examples/sample-root.tar.gz``."""
    return Recording.load(SAMPLE_TRUTH)


def sample_cases(kind: str) -> list[Case]:
    """Like :func:`cases`, for the sample root (no daemon needed)."""
    if not SAMPLE_TRUTH.exists():
        return []
    return [Case("sample", i, tuple(c["template"]))
            for i, c in enumerate(load_sample_truth().data["commands"])
            if kind_of(c["docker"]) == kind]


def sample_rm_cases() -> list[Case]:
    if not SAMPLE_TRUTH.exists():
        return []
    return [Case("sample", i, tuple(c["template"]))
            for i, c in enumerate(load_sample_truth().data["rm"])]


# -- by hand ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=cache_root())
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"one of {', '.join(SCENARIOS)} (default: all)")
    opts = parser.parse_args(argv)
    unknown = set(opts.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    with ExitStack() as stack:
        cache = opts.cache or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="oracle-cache-")))
        t0 = time.monotonic()
        recs = ensure_recorded(cache, opts.scenarios or None,
                               log=lambda s: print(s, file=sys.stderr))
        for rec in recs.values():
            timings = ", ".join(f"{k} {v:.1f}s" for k, v in rec.data["timings"].items())
            print(f"{rec.name}: {len(rec.data['commands'])} commands, "
                  f"{len(rec.data['rm'])} rm cases ({timings})")
        print(f"total {time.monotonic() - t0:.1f}s, cache {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Case", "Recording", "analyze_args", "cases", "refused_cases", "check_command", "check_rm_bytes",
           "check_rm_output", "commands_for", "ensure_recorded", "load_sample_truth",
           "rm_cases", "run_analyze", "sample_cases", "sample_rm_cases", "time_candidates"]
