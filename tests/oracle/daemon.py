"""A private dockerd and a loopback registry, each in fresh temporary directories.

The daemon is one of the :data:`JUDGES`: Debian's dockerd 20.10 (graph driver), or
Debian unstable's dockerd 28.5 with its containerd 2.1 (``tests/oracle/docker28.sh``
unpacks them) keeping images in a graph driver or in the containerd image store;
commands go through the Docker 28 client, whose wording ``analyze`` matches.
Everything started here is stopped here: containers, shims, containerd, dockerd,
mounts and directories.
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/local/bin/docker"          # Docker 28 client: the wording to match
DOCKER_BUILDKIT_CLIENT = "/usr/bin/docker"  # Debian's 20.10 client: BuildKit built in
REGISTRY = "/usr/bin/docker-registry"
CTR = "/usr/bin/ctr"
ORACLE_DIR = Path(__file__).resolve().parent
# Where docker28.sh unpacks dockerd 28.5 and containerd 2.1 (CI may point elsewhere).
DOCKER28_ENV = "ANALYZER_DOCKER28"


@dataclass(frozen=True)
class Judge:
    """A dockerd build and the way it is configured: what a recording is judged by.

    ``bin_dirs`` go first on dockerd's PATH, because dockerd starts the first
    ``containerd`` (and shim) it finds there; ``version`` and ``containerd_version``
    are the prefixes the running daemon must report, so that a recording never comes
    silently from another build (Debian 12's own containerd is 1.6).
    """
    name: str
    dockerd: str
    bin_dirs: tuple[str, ...]
    ctr: str
    version: str
    containerd_version: str
    config: Mapping = field(default_factory=dict)    # daemon.json
    storage_driver: str | None = "overlay2"           # None: the containerd snapshotter
    # A containerd started on its own (dockerd --containerd), rooted beside the data
    # root (``../containerd``), as on hosts with docker-ce's system containerd.
    system_containerd: bool = False

    @property
    def remapped(self) -> bool:
        return "userns-remap" in self.config

    @property
    def containerd_store(self) -> bool:
        return bool(self.config.get("features", {}).get("containerd-snapshotter"))

    def prepare(self) -> None:
        """Unpack this judge's binaries if they are not there (idempotent)."""
        if self.dockerd.startswith(docker28_dir()) and not os.access(self.dockerd, os.X_OK):
            subprocess.run([str(ORACLE_DIR / "docker28.sh"), docker28_dir()], check=True,
                           capture_output=True, timeout=900)


def docker28_dir() -> str:
    return os.environ.get(DOCKER28_ENV, "/opt/docker28")


def _docker28(name: str, **kw) -> Judge:
    base = docker28_dir()
    return Judge(name, f"{base}/usr/sbin/dockerd", (f"{base}/usr/bin", f"{base}/usr/sbin"),
                 f"{base}/usr/bin/ctr", "28.5.", "2.1.", **kw)


JUDGES: dict[str, Judge] = {j.name: j for j in (
    Judge("dockerd20", DOCKERD, (), CTR, "20.10.", "1.6."),
    # vfs: every layer a full copy; container sizes by the naive diff.
    Judge("dockerd20-vfs", DOCKERD, (), CTR, "20.10.", "1.6.", storage_driver="vfs"),
    # Legacy overlay (dropped in Docker 24): each layer's root/ a hard-link copy of its
    # parent's; containers an upper/ over their image's root/, sized by the naive diff.
    Judge("dockerd20-overlay", DOCKERD, (), CTR, "20.10.", "1.6.", storage_driver="overlay"),
    # User-namespace remapping: the daemon keeps everything in <data-root>/<uid>.<gid>/
    # (the dockremap user's first subordinate IDs), files owned by IDs shifted into them.
    Judge("dockerd20-userns", DOCKERD, (), CTR, "20.10.", "1.6.",
          config={"userns-remap": "default"}),
    # btrfs: each layer a subvolume snapshot of its parent's; the data root is a loop
    # mount of a fresh btrfs made for the daemon.
    Judge("dockerd20-btrfs", DOCKERD, (), CTR, "20.10.", "1.6.", storage_driver="btrfs"),
    _docker28("dockerd28"),
    _docker28("dockerd28-vfs", storage_driver="vfs"),
    _docker28("dockerd28-userns", config={"userns-remap": "default"}),
    # Docker 29's default store: images in containerd (namespace moby), snapshotter overlayfs.
    _docker28("dockerd28-containerd", config={"features": {"containerd-snapshotter": True}},
              storage_driver=None),
    _docker28("dockerd28-system-containerd",
              config={"features": {"containerd-snapshotter": True}}, storage_driver=None,
              system_containerd=True),
)}

# containerd 2.1's config for a private system containerd: its own root, state and
# sockets, and no CRI (it would want a CNI setup and /var/lib paths of its own).
_CONTAINERD_TOML = """\
version = 3
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images",
                    "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1"]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"""

# Client environment variables that would change what the CLI prints or talks to.
_CLIENT_VARS = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_BUILDKIT",
                "DOCKER_CLI_HINTS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                "DOCKER_API_VERSION", "DOCKER_DEFAULT_PLATFORM", "BUILDKIT_PROGRESS")


# Each daemon's networks come from a /16 of its own, 10.<POOL_FIRST + slot>.0.0/16 cut
# into /24s, instead of Docker's defaults (172.17-31, 192.168) that every daemon here
# shares: a daemon killed before it could clean up leaves its br-* bridges behind, and
# enough of them exhaust the defaults ("could not find an available, non-overlapping IPv4
# address pool" at `network create`). A slot is held by flock for the daemon's life, so
# its bridges are nobody else's: they are swept on taking the slot (what a killed holder
# left) and on stop. 10.123.0.0/24 is a scenario's config-only network: below the range.
POOL_DIR = "/tmp/analyzer-oracle-pools"
POOL_FIRST, POOL_SLOTS = 128, 64


class AddressPool:
    """One slot of :data:`POOL_DIR`: a private address pool, held until released."""

    def __init__(self) -> None:
        os.makedirs(POOL_DIR, exist_ok=True)
        for slot in range(POOL_SLOTS):
            fd = os.open(f"{POOL_DIR}/{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd: int | None = fd
            self.network = ipaddress.ip_network(f"10.{POOL_FIRST + slot}.0.0/16")
            remove_bridges(self.network)
            return
        raise RuntimeError(f"all {POOL_SLOTS} oracle address pools are held ({POOL_DIR})")

    @property
    def flag(self) -> str:
        return f"base={self.network},size=24"

    def release(self) -> None:
        """Remove the bridges left in the pool, then let the slot go."""
        if self.fd is not None:
            remove_bridges(self.network)
            os.close(self.fd)
            self.fd = None


def remove_bridges(network: ipaddress.IPv4Network) -> None:
    """Delete every ``br-*`` bridge with an IPv4 address in ``network``."""
    out = subprocess.run(["ip", "-j", "addr", "show", "type", "bridge"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    for link in json.loads(out or "[]"):
        if not link["ifname"].startswith("br-"):
            continue
        if any(a.get("family") == "inet" and ipaddress.ip_address(a["local"]) in network
               for a in link.get("addr_info", ())):
            subprocess.run(["ip", "link", "delete", link["ifname"], "type", "bridge"],
                           capture_output=True, timeout=30)


class DockerError(RuntimeError):
    """A docker command that had to succeed did not."""

    def __init__(self, proc: subprocess.CompletedProcess):
        super().__init__(f"{' '.join(map(str, proc.args))} exited {proc.returncode}\n"
                         f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        self.proc = proc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def du_bytes(path: str | os.PathLike) -> int:
    """Allocated bytes under ``path`` as ``du -s -B1 --one-file-system`` counts them."""
    out = subprocess.run(["du", "-s", "-B1", "--one-file-system", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def copy_root(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy a data root as a disk snapshot sees it: mounts under it (the merged
    directories of running containers, their shm) stay empty mount points."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--one-file-system", str(src), str(dest)],
                   check=True, capture_output=True)


def _mounts_under(prefixes: Sequence[str]) -> list[str]:
    """Mount points under any of ``prefixes``, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # mountinfo field 5 is the mount point, octal-escaped.
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == p or point.startswith(p + "/") for p in prefixes):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _container_cgroups(pid: int) -> list[str]:
    """The cgroup directories of a container process (``…/docker/<64 hex>``), v1 and v2."""
    found = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if not re.search(r"/docker/[0-9a-f]{64}\Z", path):
            continue
        if controllers:
            for c in controllers.split(","):
                found.append(f"/sys/fs/cgroup/{c.removeprefix('name=')}{path}")
        else:
            found.append(f"/sys/fs/cgroup/unified{path}")
    return found


def _thaw(cgroup_dirs: Sequence[str]) -> None:
    """Unfreeze paused containers: a frozen process cannot act on SIGKILL."""
    for d in cgroup_dirs:
        for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                with open(f"{d}/{name}", "w") as f:
                    f.write(value)
            except OSError:
                pass


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # A zombie is gone for our purposes: it holds no mounts or files.
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    """A private dockerd on a fresh data root.

    Use as a context manager. ``data_root`` lives in a temporary directory; the exec
    root is short (``/tmp/dXXXXXXXX``) because the unix socket path is limited.
    """

    def __init__(self, *, registry_mirror: str | None = None,
                 insecure_registries: Sequence[str] = (), tmp_parent: str | None = None,
                 start_timeout: float = 60.0, judge: Judge = JUDGES["dockerd20"]):
        self.judge = judge
        self.registry_mirror = registry_mirror
        self.insecure_registries = tuple(insecure_registries)
        self.tmp_parent = tmp_parent
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.containerd: subprocess.Popen | None = None
        self.tmp: Path | None = None
        self.exec_root: Path | None = None
        self.pool: AddressPool | None = None

    # -- paths ---------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "root"

    @property
    def containerd_root(self) -> Path | None:
        """The system containerd's root, beside the data root; None when dockerd runs its own."""
        assert self.tmp is not None
        return self.tmp / "containerd" if self.judge.system_containerd else None

    @property
    def containerd_address(self) -> str:
        assert self.exec_root is not None
        if self.judge.system_containerd:
            return f"{self.exec_root}/c.sock"
        return f"{self.exec_root}/containerd/containerd.sock"

    @property
    def log_path(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "dockerd.log"

    @property
    def host(self) -> str:
        assert self.exec_root is not None
        return f"unix://{self.exec_root}/d.sock"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "Daemon":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("daemon already started")
        self.judge.prepare()
        self.pool = AddressPool()
        self.tmp = Path(tempfile.mkdtemp(prefix="oracle-", dir=self.tmp_parent))
        self.exec_root = Path(tempfile.mkdtemp(prefix="d", dir="/tmp"))
        if self.judge.remapped:
            # dockerd refuses a root the remapped root user cannot traverse to.
            for p in (self.tmp, self.exec_root):
                os.chmod(p, 0o711)
        (self.tmp / "config").mkdir()
        # An empty client config: no user formats or aliases change what the CLI prints.
        (self.tmp / "config" / "config.json").write_text("{}")
        argv = [self.judge.dockerd, "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root), "-H", self.host, "--bridge=none",
                "--iptables=false", "--ip6tables=false", "--pidfile", f"{self.exec_root}/pid",
                # Its own config file, so that /etc/docker/daemon.json is not read.
                "--config-file", str(self.tmp / "daemon.json"),
                "--default-address-pool", self.pool.flag]
        if self.judge.storage_driver:
            argv += ["--storage-driver", self.judge.storage_driver]
        (self.tmp / "daemon.json").write_text(json.dumps(self.judge.config))
        if self.registry_mirror:
            argv += ["--registry-mirror", self.registry_mirror]
        for reg in self.insecure_registries:
            argv += ["--insecure-registry", reg]
        try:
            if self.judge.storage_driver == "btrfs":
                self._mount_btrfs()
            if self.judge.system_containerd:
                self._start_containerd()
                argv += ["--containerd", self.containerd_address]
            self._spawn(argv, "wb")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _mount_btrfs(self) -> None:
        """A fresh btrfs in a sparse file, loop-mounted as the data root (the loop device
        goes with the mount: stop() unmounts everything under tmp)."""
        image = self.tmp / "btrfs.img"
        with open(image, "wb") as f:
            f.truncate(2 << 30)
        subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True,
                       timeout=120)
        self.data_root.mkdir()
        subprocess.run(["mount", "-o", "loop", str(image), str(self.data_root)], check=True,
                       capture_output=True, timeout=120)

    def _start_containerd(self) -> None:
        """The judge's containerd on a private root, state and address."""
        assert self.tmp is not None and self.exec_root is not None
        config = self.tmp / "containerd.toml"
        config.write_text(_CONTAINERD_TOML.format(
            root=self.containerd_root, state=f"{self.exec_root}/cs",
            address=self.containerd_address, opt=self.tmp / "opt"))
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*self.judge.bin_dirs, env.get("PATH", "")])
        with open(self.tmp / "containerd.log", "wb") as log:
            self.containerd = subprocess.Popen(
                [f"{self.judge.bin_dirs[0]}/containerd", "--config", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not Path(self.containerd_address).exists():
            if self.containerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start:\n" + (
                    self.tmp / "containerd.log").read_text(errors="replace")[-3000:])
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop dockerd and start it again on the same data root (its log goes on)."""
        argv = list(self.proc.args)
        self._stop_processes()
        self._spawn(argv, "ab")
        self._wait_ready()

    def _spawn(self, argv: list[str], log_mode: str) -> None:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([*self.judge.bin_dirs, env.get("PATH", "")])
        log = open(self.log_path, log_mode)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, env=env,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        sock = Path(self.host[len("unix://"):])
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode} on start:\n"
                                   f"{self.log_tail()}")
            if sock.exists():
                probe = self.docker("version", "--format", "{{json .Server}}", timeout=10)
                if probe.returncode == 0:
                    self._check_versions(json.loads(probe.stdout))
                    self.docker_root = Path(self.run("info", "--format",
                                                     "{{.DockerRootDir}}").strip())
                    return
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not answer within {self.start_timeout}s:\n"
                           f"{self.log_tail()}")

    def _check_versions(self, server: dict) -> None:
        """The daemon and its containerd are the judge's, or the recording is refused."""
        self.server_version = server["Version"]
        components = {c["Name"]: c["Version"] for c in server.get("Components") or ()}
        self.containerd_version = components.get("containerd", "").removeprefix("v")
        for what, got, want in (("dockerd", self.server_version, self.judge.version),
                                ("containerd", self.containerd_version,
                                 self.judge.containerd_version)):
            if not got.startswith(want):
                raise RuntimeError(f"judge {self.judge.name}: {what} is {got!r}, "
                                   f"expected {want}*")

    def stop(self) -> None:
        """Kill containers, dockerd, its containerd and shims; unmount; remove dirs."""
        if self.proc is not None:
            self._stop_processes()
            self.proc = None
        if self.containerd is not None:
            self.containerd.terminate()
            try:
                self.containerd.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.containerd.kill()
                self.containerd.wait(timeout=20)
            self.containerd = None
        prefixes = [str(p) for p in (self.tmp, self.exec_root) if p is not None]
        for point in _mounts_under(prefixes):
            subprocess.run(["umount", "-l", point], capture_output=True)
        for p in (self.tmp, self.exec_root):
            if p is not None:
                shutil.rmtree(p, ignore_errors=True)
        self.tmp = self.exec_root = None
        if self.pool is not None:
            self.pool.release()
            self.pool = None

    def _kill_containers(self) -> None:
        """SIGKILL running containers (unpausing paused ones first) through the daemon."""
        paused = self.docker("ps", "-q", "--no-trunc", "--filter", "status=paused",
                             timeout=20).stdout.split()
        if paused:
            self.docker("unpause", *paused, timeout=30)
        running = self.docker("ps", "-q", "--no-trunc", timeout=20).stdout.split()
        if running:
            self.docker("kill", *running, timeout=30)

    def _stop_processes(self) -> None:
        if self.proc.poll() is None:
            try:
                self._kill_containers()
            except subprocess.TimeoutExpired:
                pass   # what is left is killed below, by process
        # containerd is dockerd's child; shims re-parent to init, found by their address.
        owned = set(_descendants(self.proc.pid))
        marker = f"{self.exec_root}/"
        for pid in _all_pids():
            if any(marker in arg for arg in _cmdline(pid)):
                owned.add(pid)
                owned.update(_descendants(pid))
        owned.discard(os.getpid())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        leftovers = [p for p in owned if _alive(p)]
        # Only when dockerd could not stop its containers (it died, or timed out).
        cgroups = sorted({c for p in leftovers for c in _container_cgroups(p)}, reverse=True)
        _thaw(cgroups)
        _kill(leftovers)
        if not _wait_gone(leftovers, 20):
            raise RuntimeError(f"processes would not die: {leftovers}")
        for d in cgroups:
            try:
                os.rmdir(d)
            except OSError:
                pass

    # -- commands ------------------------------------------------------------------
    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CLIENT_VARS}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.tmp / "config"),
                   TZ="UTC", LC_ALL="C.UTF-8")
        env.update(extra or {})
        return env

    def docker(self, *args: str, input: bytes | str | None = None,
               env: Mapping[str, str] | None = None, client: str = DOCKER,
               timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the Docker CLI against this daemon; stdout/stderr decoded as UTF-8."""
        if isinstance(input, str):
            input = input.encode()
        proc = subprocess.run([client, *args], input=input, capture_output=True,
                              env=self.env(env), timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
        return subprocess.CompletedProcess(proc.args, proc.returncode,
                                           proc.stdout.decode(), proc.stderr.decode())

    def run(self, *args: str, **kw) -> str:
        """Like :meth:`docker`, but the command must succeed; returns its stdout."""
        proc = self.docker(*args, **kw)
        if proc.returncode != 0:
            raise DockerError(proc)
        return proc.stdout

    def run_bytes(self, *args: str) -> bytes:
        """Like :meth:`run`, for a command whose stdout is binary (``save``)."""
        proc = subprocess.run([DOCKER, *args], capture_output=True, env=self.env(),
                              timeout=300, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise DockerError(subprocess.CompletedProcess(
                proc.args, proc.returncode, "", proc.stderr.decode(errors="replace")))
        return proc.stdout

    def build(self, context: str | os.PathLike, *args: str, buildkit: bool) -> str:
        """``docker build`` with the legacy builder or BuildKit (20.10 client, no network)."""
        if buildkit:
            return self.run("build", "--network", "none", "--progress", "plain", *args,
                            str(context), env={"DOCKER_BUILDKIT": "1"},
                            client=DOCKER_BUILDKIT_CLIENT)
        return self.run("build", "--network", "none", *args, str(context),
                        env={"DOCKER_BUILDKIT": "0"})

    def inspect(self, kind: str, *refs: str) -> list[dict]:
        return json.loads(self.run(kind, "inspect", *refs))

    # -- evidence ------------------------------------------------------------------
    def settle(self) -> None:
        """Run containerd's garbage collection now.

        dockerd 20.10 keeps each pulled image's manifest in containerd's content store
        (``containerd/daemon/io.containerd.content.v1.content``) under a lease
        ``moby-image-<id>``; deleting the image drops the lease and containerd removes
        the blob a moment later. Deleting a lease with ``--sync`` collects at once, so
        ``du`` after a command sees what the command freed, no later.
        """
        ctr = [*self.ctr_argv("moby"), "leases"]
        lease = subprocess.run([*ctr, "create"], check=True, capture_output=True,
                               text=True, timeout=60).stdout.split()[0]
        subprocess.run([*ctr, "delete", "--sync", lease], check=True, capture_output=True,
                       timeout=60)

    def ctr_argv(self, namespace: str) -> list[str]:
        """``ctr`` (the judge's own build) talking to this daemon's containerd."""
        return [self.judge.ctr, "--address", self.containerd_address, "--namespace", namespace]

    def ctr(self, namespace: str, *args: str, input: bytes | None = None) -> str:
        """Run ``ctr`` in ``namespace``; it must succeed; returns its stdout."""
        proc = subprocess.run([*self.ctr_argv(namespace), *args], input=input,
                              capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise DockerError(subprocess.CompletedProcess(
                proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                proc.stderr.decode(errors="replace")))
        return proc.stdout.decode()

    def snapshot(self, dest: str | os.PathLike) -> Path:
        """Copy the live data root to ``dest`` as an incident snapshot would; returns
        where the data root is (a remapped daemon's: ``dest/<uid>.<gid>``). With a system
        containerd, a host's disk is copied: ``dest/docker`` and its containerd root
        beside it, ``dest/containerd``."""
        if self.containerd_root is None:
            copy_root(self.data_root, dest)
            # A remapped daemon's root is a folder of the data root (<uid>.<gid>).
            return Path(dest) / self.docker_root.relative_to(self.data_root)
        copy_root(self.data_root, Path(dest) / "docker")
        copy_root(self.containerd_root, Path(dest) / "containerd")
        return Path(dest) / "docker"

    def du(self) -> int:
        """Allocated bytes of the data root (and of the system containerd's root)."""
        return sum(du_bytes(p) for p in (self.data_root, self.containerd_root) if p is not None)


class Registry:
    """``docker-registry serve`` on 127.0.0.1 with filesystem storage in a temp dir."""

    def __init__(self, tmp_parent: str | None = None, start_timeout: float = 30.0):
        self.tmp_parent = tmp_parent
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.tmp: Path | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def __enter__(self) -> "Registry":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="registry-", dir=self.tmp_parent))
        self.port = free_port()
        config = self.tmp / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.tmp / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n")
        log = open(self.tmp / "registry.log", "wb")
        try:
            self.proc = subprocess.Popen([REGISTRY, "serve", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        log_text = (self.tmp / "registry.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"docker-registry did not answer:\n{log_text}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
