"""Image content without the network: layer tars, image configs, ``docker load`` archives.

Everything is made with ``tarfile`` and ``json`` and is a pure function of its inputs
(and of a ``random.Random`` seeded by the caller), so the same seed gives the same
diff IDs and image IDs on every run.

References: image-spec config.md (config fields, history ``empty_layer``),
image-spec layer.md (whiteouts ``.wh.<name>``, opaque ``.wh..wh..opq``),
moby image/tarexport/load.go (``manifest.json`` with Config, RepoTags, Layers).
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

# Layer members are stamped with this time, so a layer's bytes depend on its content only.
LAYER_MTIME = 1_600_000_000

BUSYBOX = "/usr/bin/busybox"  # Debian's busybox-static; copied into images, never committed
BUSYBOX_APPLETS = ("sh", "true", "false", "sleep", "echo", "cat", "rm", "mkdir", "ln",
                   "touch", "chmod", "dd", "ls", "cp", "mv", "head")

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(when: datetime) -> str:
    """Go's RFC3339Nano as Docker writes it (UTC, ``Z``, trailing zeros trimmed)."""
    when = when.astimezone(timezone.utc)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{when.microsecond:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


@dataclass
class Layer:
    """The members of one layer tar, in the order they are written."""
    members: list[tarfile.TarInfo] = field(default_factory=list)
    payloads: dict[str, bytes] = field(default_factory=dict)

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> "Layer":
        info.mtime = LAYER_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self.members.append(info)
        if data is not None:
            self.payloads[info.name] = data
        return self

    def dir(self, path: str, mode: int = 0o755) -> "Layer":
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.mode = tarfile.DIRTYPE, mode
        return self._add(info)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> "Layer":
        info = tarfile.TarInfo(path.strip("/"))
        info.size, info.mode = len(data), mode
        return self._add(info, data)

    def symlink(self, path: str, target: str) -> "Layer":
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        return self._add(info)

    def hardlink(self, path: str, target: str) -> "Layer":
        """``path`` becomes a second name of ``target``, a file earlier in this layer."""
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.linkname, info.mode = tarfile.LNKTYPE, target.strip("/"), 0o644
        return self._add(info)

    def whiteout(self, path: str) -> "Layer":
        """Delete ``path`` of a lower layer: an empty ``.wh.<name>`` beside it."""
        parent, _, name = path.strip("/").rpartition("/")
        return self.file(f"{parent}/{WHITEOUT_PREFIX}{name}" if parent
                         else f"{WHITEOUT_PREFIX}{name}", b"")

    def opaque(self, path: str) -> "Layer":
        """Replace directory ``path``: lower layers' entries in it are hidden."""
        return self.dir(path).file(f"{path.strip('/')}/{OPAQUE_WHITEOUT}", b"")

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for info in self.members:
                data = self.payloads.get(info.name) if info.isreg() else None
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def busybox_layer() -> Layer:
    """``/bin/busybox`` (static, from the host) and applet symlinks: a shell for RUN steps."""
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    layer = Layer().dir("bin").file("bin/busybox", binary, 0o755)
    for applet in BUSYBOX_APPLETS:
        layer.symlink(f"bin/{applet}", "busybox")
    return (layer.dir("etc").file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
            .file("etc/group", b"root:x:0:\n").dir("tmp", 0o1777).dir("root", 0o700))


def random_text(rng: random.Random, size: int) -> bytes:
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
             "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode() + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:size])


def random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def synthetic_layer(rng: random.Random, root: str, files: int, size: tuple[int, int],
                    *, binary: bool = False) -> Layer:
    """A layer of ``files`` files under ``root`` (with subdirectories), sizes in ``size``."""
    layer = Layer()
    parts = root.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        layer.dir("/".join(parts[:i]))
    subdirs = [f"{root.strip('/')}/{name}" for name in ("lib", "share", "etc")]
    for d in subdirs:
        layer.dir(d)
    make = random_bytes if binary else random_text
    for i in range(files):
        layer.file(f"{rng.choice(subdirs)}/f{i:03d}", make(rng, rng.randint(*size)))
    return layer


@dataclass
class HistoryStep:
    created_by: str
    empty_layer: bool = False
    comment: str | None = None


@dataclass
class ImageSpec:
    """An image to load: its layers, config fields and tags."""
    layers: Sequence[Layer]
    created: datetime | None
    tags: Sequence[str] = ()
    history: Sequence[HistoryStep] | None = None
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    cmd: Sequence[str] | None = ("/bin/sh",)
    entrypoint: Sequence[str] | None = None
    workdir: str = ""
    exposed_ports: Sequence[str] = ()
    labels: dict[str, str] | None = None
    author: str | None = None
    comment: str | None = None
    architecture: str = "amd64"

    def __post_init__(self) -> None:
        self._tars = [layer.tar() for layer in self.layers]

    @property
    def layer_tars(self) -> list[bytes]:
        return self._tars

    @property
    def diff_ids(self) -> list[str]:
        return [sha256_digest(t) for t in self._tars]

    def config(self) -> bytes:
        """The config JSON; its sha256 is the image ID."""
        history = self.history
        if history is None:
            history = [HistoryStep(f"/bin/sh -c #(nop) ADD file:{d[7:19]} in / ")
                       for d in self.diff_ids]
            if self.cmd:
                history.append(HistoryStep(
                    f"/bin/sh -c #(nop)  CMD {json.dumps(list(self.cmd))}", True))
        if sum(not h.empty_layer for h in history) != len(self._tars):
            raise ValueError("history must have one non-empty step per layer")
        step_times = _step_times(self.created, len(history))
        cfg: dict = {
            "Env": list(self.env),
            "Cmd": list(self.cmd) if self.cmd is not None else None,
            "WorkingDir": self.workdir,
            "Entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "OnBuild": None,
            "Labels": self.labels,
        }
        if self.exposed_ports:
            cfg["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        doc: dict = {"architecture": self.architecture, "os": "linux", "config": cfg,
                     "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
                     "history": [_history_entry(h, t) for h, t in zip(history, step_times)]}
        if self.created is not None:
            doc["created"] = rfc3339(self.created)
        if self.author:
            doc["author"] = self.author
        if self.comment:
            doc["comment"] = self.comment
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @property
    def image_id(self) -> str:
        return sha256_digest(self.config())


def _step_times(created: datetime | None, n: int) -> list[datetime | None]:
    # History steps a few minutes apart, the last one at the image's creation.
    if created is None:
        return [None] * n
    return [created - timedelta(minutes=7 * (n - 1 - i)) for i in range(n)]


def _history_entry(step: HistoryStep, when: datetime | None) -> dict:
    entry: dict = {"created_by": step.created_by}
    if when is not None:
        entry["created"] = rfc3339(when)
    if step.empty_layer:
        entry["empty_layer"] = True
    if step.comment:
        entry["comment"] = step.comment
    return entry


def save_archive(images: Iterable[ImageSpec]) -> bytes:
    """A ``docker save`` archive (manifest.json, configs, layer tars) holding ``images``.

    Layers with the same diff ID are stored once, as ``docker save`` does.
    """
    files: dict[str, bytes] = {}
    manifest = []
    for spec in images:
        config = spec.config()
        config_name = f"{hashlib.sha256(config).hexdigest()}.json"
        files[config_name] = config
        layer_names = []
        for tar, diff_id in zip(spec.layer_tars, spec.diff_ids):
            name = f"{diff_id[7:]}/layer.tar"
            files[name] = tar
            files[f"{diff_id[7:]}/VERSION"] = b"1.0"
            layer_names.append(name)
        manifest.append({"Config": config_name, "RepoTags": list(spec.tags) or None,
                         "Layers": layer_names})
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = sorted({name.split("/")[0] for name in files if "/" in name})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, LAYER_MTIME
            tf.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, LAYER_MTIME
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def dockerfile_context(directory: str | Path, dockerfile: str,
                       files: dict[str, bytes] | None = None) -> Path:
    """Write a build context: ``Dockerfile`` plus ``files`` (relative paths)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for rel, data in (files or {}).items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    return directory
