"""The graph-driver image store: what every driver shares under ``image/<driver>/``.

A source (``KIND``, ``detect``, ``read``): found by a layer or reference store of a
driver dockerd knows.

Reads the reference store (repositories.json), the image store (imagedb), the
layer store (layerdb: layers and container mounts) and containers/, and builds
a :class:`~analyzer.model.Store`. Loads tolerantly, as dockerd's restore does:
what it would skip is skipped, but each skip leaves a Diagnostic.

References: moby reference/store.go, image/store.go (restore), image/fs.go,
layer/layer_store.go (loadLayer, loadMount), layer/filestore.go,
container/container.go (FromDisk).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping

import orjson

from .. import reference as refs
from ..errors import AnalyzerError, EvidenceError
from ..goapi import unmarshal
from ..goapi.strconv import parse_int
from ..goapi.time import GO_ZERO_UNIX, parse_rfc3339_ns
from ..ids import (CacheID, ChainID, ContainerID, DiffID, ImageID, MountID,
                   chain_id_from_parent, digest_of, hex_part, is_digest, is_hex64, is_path_name,
                   short_id)
from ..layerrecords import plain_layers
from ..model import (Container, Diagnostic, HealthResult, Image, Layer, Mount, Port,
                     Reference, Store, Volume, parent_cycles)
from . import Detected, Roots, layout, mobytypes
from .drivers import DRIVERS
from .evidence import JSON_LIMIT, EvidenceRoot

KIND = "graphdriver"

# Each image's name, config (digest and decoded document, or why it was not read) and
# metadata files (Loader.image_files).
_ImageFiles = tuple[list[str], list["tuple[str, Any] | EvidenceError | None"],
                    list[list["str | None | EvidenceError"]]]


# Files that hold a directory's name: dockerd joins their bytes to a path whatever they
# are, so they keep them (surrogate escapes); a digest or a number that is not UTF-8 is
# no digest or number, and reads as U+FFFD.
_NAME_FILES = frozenset({"cache-id", "mount-id", "init-id"})


def _errors(name: str) -> str:
    return "surrogateescape" if name in _NAME_FILES else "replace"


def texts(got: list[bytes | None | EvidenceError], names: tuple[str, ...]
          ) -> list[str | None | EvidenceError]:
    """What reading a record's files (``names``) gave, as the loader reasons about them:
    text without surrounding whitespace, None when absent, or why it was not read."""
    return [item.decode("utf-8", _errors(name)).strip() if type(item) is bytes else item
            for item, name in zip(got, names)]


class _Loader:
    def __init__(self, root: EvidenceRoot, driver: str):
        self.root = root
        self.driver = driver
        self.paths = layout.ImageRoot(driver)
        self.diagnostics: list[Diagnostic] = []
        self._chains: dict[tuple[ChainID | None, DiffID], ChainID] = {}

    def warn(self, source: str, message: str, kind: str | None = None,
             id: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(source, message, kind, id))

    def read_text(self, rel: str) -> str | None:
        try:
            data = self.root.read(rel)
        except EvidenceError as exc:
            self.warn(exc.path, exc.reason)
            return None
        return None if data is None else data.decode("utf-8", "replace").strip()

    # -- reference store ---------------------------------------------------------------
    def references(self, images: dict[ImageID, Image], rel: str | None = None,
                   ids: Mapping[str, ImageID] | None = None) -> tuple[Reference, ...]:
        """The reference store (or ``rel``, a pre-1.10 ``repositories-<driver>`` whose
        IDs ``ids`` translates)."""
        rel = rel or self.paths.repositories_json
        try:
            data = self.root.read(rel, JSON_LIMIT)
        except EvidenceError as exc:
            self.warn(exc.path, exc.reason)
            return ()
        if data is None:
            return ()
        try:
            doc = orjson.loads(data)
            unmarshal.check(doc, mobytypes.REPOSITORIES)
        except orjson.JSONDecodeError as exc:
            self.warn(rel, f"not valid JSON: {exc}")
            return ()
        except unmarshal.Mismatch as exc:
            self.warn(rel, f"{exc}; no references read")
            return ()
        # Go: a null document unmarshals to the zero store, with no references.
        repos = (doc or {}).get("Repositories") or {}
        out: list[Reference] = []
        for name, entries in repos.items():
            if not isinstance(entries, dict):
                self.warn(rel, f"repository {name!r} is not an object", "repository", name)
                continue
            for key, image_id in entries.items():
                if ids is not None:
                    # Before 1.10: repository -> tag (or digest) -> v1 ID (migrateRefs).
                    key = f"{name}{'@' if is_digest(key) else ':'}{key}"
                    image_id = ids.get(image_id) or image_id if isinstance(image_id, str) \
                        else image_id
                if not isinstance(image_id, str) or image_id not in images:
                    # moby: reference/store.go — references to missing images are kept
                    # in the file but resolve to nothing; the daemon drops them on load.
                    self.warn(rel, f"{key} names an image not in the image store: {image_id}",
                              "reference", key)
                    continue
                try:
                    out.append(refs.store_reference(name, key, ImageID(image_id)))
                except AnalyzerError as exc:
                    self.warn(rel, f"{key}: {exc}", "reference", key)
        return tuple(out)

    def top_chain(self, diff_ids: tuple[DiffID, ...]) -> ChainID | None:
        """ChainID of a whole rootfs; images share base chains, so prefixes are memoized
        (and each layer loaded put its own there)."""
        top: ChainID | None = None
        memo = self._chains
        for diff_id in diff_ids:
            key = (top, diff_id)
            nxt = memo.get(key)
            if nxt is None:
                nxt = memo[key] = chain_id_from_parent(top, diff_id)
            top = nxt
        return top

    # -- image store ------------------------------------------------------------------
    def image_files(self) -> _ImageFiles:
        """Each image's name, config (its digest and what decoding it gave) and metadata:
        what loading an image needs but the layer store."""
        # dockerd skips names that are not digests silently.
        names = [n for n in self.root.listdir(self.paths.image_contents) or () if is_hex64(n)]
        configs = self.root.read_files([self.paths.image_config(n) for n in names], JSON_LIMIT)
        metadata = self._read_files(self.paths.image_metadata, names, layout.IMAGE_METADATA_FILES)
        return names, [_decoded(data) if type(data) is bytes else data for data in configs], metadata

    def images(self, layers: dict[ChainID, Layer], files: _ImageFiles) -> dict[ImageID, Image]:
        names, configs, metadata = files
        out: dict[ImageID, Image] = {}
        for hexid, data, meta in zip(names, configs, metadata):
            rel = self.paths.image_config(hexid)
            # image/store.go restore reads parent and lastUpdated, and goes on without them.
            if self._unread(meta, "not used", "image", f"sha256:{hexid}"):
                meta = [None if isinstance(m, EvidenceError) else m for m in meta]
            if isinstance(data, EvidenceError):
                self.warn(data.path, data.reason)
            elif data is not None:
                img = self.image(hexid, rel, *data, meta, layers)
                if img is not None:
                    out[img.id] = img
        for cycle in parent_cycles({i: img.parent for i, img in out.items()}):
            # The images are sound (their IDs hash their configs); their metadata is not.
            for image_id in cycle:
                self.warn(self.paths.image_metadata(hex_part(image_id), "parent"),
                          _loop_text("image", cycle, "parent not used"), "image", image_id)
                out[image_id] = dataclasses.replace(out[image_id], parent=None)
        return out

    def _read_files(self, path: Callable[[str], str], dirs: list[str],
                    names: tuple[str, ...]) -> list[list[str | None | EvidenceError]]:
        """Small text files ``path(dir)/name``, for each dir a list by name: the text, None
        when absent, or why it could not be read (the caller says what that costs)."""
        got = self._read_raw(path, dirs, names)
        k = len(names)
        return [texts(got[i:i + k], names) for i in range(0, len(got), k)]

    def _read_raw(self, path: Callable[[str], str], dirs: list[str],
                  names: tuple[str, ...]) -> list[bytes | None | EvidenceError]:
        """What reading ``path(dir)/name`` gave, dir by dir, name by name."""
        # Each directory's path once, its files' below it (the layer store has 35,000).
        return self.root.read_files([f"{base}/{n}" for base in map(path, dirs) for n in names])

    def _unread(self, files: list[str | None | EvidenceError], cost: str, kind: str,
                id: str) -> bool:
        """Whether a file of the record could not be read; the first one is warned of,
        with what it costs. moby's layer store fails to load a layer or mount when one
        of its files cannot be read (other than absent)."""
        for err in files:               # a loop, not a generator: 45,000 records at scale
            if isinstance(err, EvidenceError):
                self.warn(err.path, f"{err.reason}; {cost}", kind, id)
                return True
        return False

    def image(self, hexid: str, rel: str, digest: str, config: Any, meta: list[str | None],
              layers: dict[ChainID, Layer]) -> Image | None:
        """An image from its config's digest and what decoding it gave (_decoded)."""
        image_id = ImageID("sha256:" + hexid)
        if digest != image_id:
            # moby: image/fs.go get — "failed to verify image"; the daemon skips it.
            self.warn(rel, f"config digest mismatch: want={image_id} got={digest}",
                      "image", image_id)
            return None
        if isinstance(config, orjson.JSONDecodeError):
            self.warn(rel, f"config is not valid image JSON: {config}", "image", image_id)
            return None
        if isinstance(config, unmarshal.Mismatch):
            # moby: image/store.go restore — an image whose config does not decode is skipped.
            self.warn(rel, f"{config}; image skipped", "image", image_id)
            return None
        config = config or {}           # Go: null unmarshals to the zero value
        diff_ids: tuple[DiffID, ...] = tuple((config.get("rootfs") or {}).get("diff_ids") or ())
        top = self.top_chain(diff_ids)
        if top is not None and top not in layers:
            # moby: image/store.go restore — images whose chain is missing are not loaded.
            self.warn(rel, f"layer chain {top} is missing from the layer store; image skipped",
                      "image", image_id)
            return None
        parent_raw, last_updated = meta
        parent = ImageID(parent_raw) if parent_raw else None
        if parent is not None and not is_digest(parent):
            self.warn(self.paths.image_metadata(hexid, "parent"),
                      f"not an image ID: {parent_raw!r}", "image", image_id)
            parent = None
        created = config.get("created")
        return Image(
            id=image_id, config=config, diff_ids=diff_ids, top_layer=top, parent=parent,
            created=created if isinstance(created, str) else None,
            created_ns=created_unix_ns(created), last_updated=last_updated or None,
            source=rel)

    # -- layer store ------------------------------------------------------------------
    def layer_files(self) -> tuple[list[str], list[bytes | None | EvidenceError]]:
        """Each layer's name, and what reading its files (LAYER_FILES) gave."""
        # "-removing" orphans and tmp dirs: skipped by dockerd.
        names = [n for n in self.root.listdir(self.paths.layers) or () if is_hex64(n)]
        return names, self._read_raw(self.paths.layer, names, layout.LAYER_FILES)

    def layers(self, names: list[str], got: list[bytes | None | EvidenceError]
               ) -> dict[ChainID, Layer]:
        out: dict[ChainID, Layer] = {}
        k = len(layout.LAYER_FILES)
        # Most records are plain (layerrecords): taken as they stand, natively checked;
        # self.layer reasons about the others, and warns.
        for i, (hexid, plain) in enumerate(zip(names, plain_layers(names, got))):
            if plain is None:
                layer = self.layer(hexid, texts(got[i * k:i * k + k], layout.LAYER_FILES))
                if layer is None:
                    continue
            else:
                layer = self.plain_layer(hexid, *plain)
            out[layer.chain_id] = layer
        self._drop_cycles(out)
        for layer in out.values():
            if layer.parent is not None and layer.parent not in out:
                self.warn(layer.source, f"parent layer {layer.parent} is missing",
                          "layer", layer.chain_id)
        return out

    def _drop_cycles(self, layers: dict[ChainID, Layer]) -> None:
        """Layers whose parent chain loops are damage, and so is every layer above one:
        moby's loadLayer loads a layer's parent first, and would never finish."""
        cycles = parent_cycles({c: layer.parent for c, layer in layers.items()})
        if not cycles:
            return                      # nothing is above a cycle either
        damaged: set[ChainID] = set()
        for cycle in cycles:
            for chain_id in cycle:
                self.warn(self.paths.layer(hex_part(chain_id), "parent"),
                          _loop_text("layer", cycle, "layer skipped"), "layer", chain_id)
            damaged.update(cycle)
        sound: set[ChainID] = set()
        for chain_id in list(layers):
            path: list[ChainID] = []
            cur: ChainID | None = chain_id
            while cur in layers and cur not in damaged and cur not in sound:
                path.append(cur)
                cur = layers[cur].parent
            if cur not in damaged:
                sound.update(path)
                continue
            for above in path:
                self.warn(self.paths.layer(hex_part(above), "parent"),
                          f"parent chain leads into the cycle at {short_id(cur)}; layer skipped",
                          "layer", above)
            damaged.update(path)
        for chain_id in damaged:
            del layers[chain_id]

    def layer(self, hexid: str, files: list[str | None | EvidenceError]) -> Layer | None:
        rel = self.paths.layer(hexid)
        chain_id = ChainID("sha256:" + hexid)
        if self._unread(files, "layer skipped", "layer", chain_id):
            return None
        diff, size, cache_id, parent = files
        if not diff or not is_digest(diff):
            self.warn(self.paths.layer(hexid, "diff"), f"not a diff ID: {diff!r}; layer skipped",
                      "layer", chain_id)
            return None
        if not cache_id:
            self.warn(self.paths.layer(hexid, "cache-id"), "missing or empty; layer skipped",
                      "layer", chain_id)
            return None
        if not is_path_name(cache_id):
            # The driver joins it to its home: "../x" would name something else.
            self.warn(self.paths.layer(hexid, "cache-id"),
                      f"not a directory name: {cache_id[:80]!r}; layer skipped", "layer", chain_id)
            return None
        parent_id = ChainID(parent) if parent else None
        link = (parent_id, DiffID(diff))
        expect = self._chains[link] = chain_id_from_parent(*link)
        if expect != chain_id:
            self.warn(rel, f"chain ID mismatch: want={chain_id} got={expect}", "layer", chain_id)
        try:
            # moby: layer/filestore.go GetSize — strconv.ParseInt(s, 10, 64); a failure
            # keeps the layer (and the images above it) from loading.
            diff_size = parse_int(size) if size else 0
            if diff_size < 0:
                raise ValueError(size)
        except ValueError:
            self.warn(self.paths.layer(hexid, "size"),
                      f"not a size in bytes: {size[:40]!r}; layer skipped", "layer", chain_id)
            return None
        return Layer(chain_id=chain_id, diff_id=DiffID(diff), parent=parent_id,
                     cache_id=CacheID(cache_id), diff_size=diff_size, source=rel)

    def plain_layer(self, hexid: str, diff: DiffID, diff_size: int, cache_id: CacheID,
                    parent: ChainID | None) -> Layer:
        """A record layerrecords found plain: what self.layer makes of it, no check left."""
        chain_id = ChainID("sha256:" + hexid)
        self._chains[(parent, diff)] = chain_id
        return Layer(chain_id=chain_id, diff_id=diff, parent=parent, cache_id=cache_id,
                     diff_size=diff_size, source=self.paths.layer(hexid))

    def mounts(self) -> dict[str, Mount]:
        names = self.root.listdir(self.paths.mounts) or []
        out: dict[str, Mount] = {}
        files_of = self._read_files(self.paths.mount, names, layout.MOUNT_FILES)
        for name, files in zip(names, files_of):
            rel = self.paths.mount(name)
            if self._unread(files, "mount skipped", "container", name):
                continue
            mount_id, init_id, parent = files
            if not mount_id:
                self.warn(rel, "no mount-id; mount skipped", "container", name)
                continue
            bad = next(((f, v) for f, v in (("mount-id", mount_id), ("init-id", init_id))
                        if v and not is_path_name(v)), None)
            if bad is not None:
                self.warn(self.paths.mount(name, bad[0]), f"not a directory name: {bad[1][:80]!r}; "
                                             "mount skipped", "container", name)
                continue
            out[name] = Mount(name=name, mount_id=MountID(mount_id),
                              init_id=MountID(init_id) if init_id else None,
                              parent=ChainID(parent) if parent else None, source=rel)
        return out

    # -- containers -------------------------------------------------------------------
    def containers(self, config: str = layout.CONTAINER_CONFIG
                   ) -> dict[ContainerID, Container]:
        out: dict[ContainerID, Container] = {}
        for cid in self.root.listdir(layout.CONTAINERS) or []:
            rel = layout.container_config(cid, config)
            try:
                data = self.root.read(rel, JSON_LIMIT)
            except EvidenceError as exc:
                self.warn(exc.path, exc.reason)
                continue
            if data is None:
                continue
            try:
                cfg = orjson.loads(data)
                unmarshal.check(cfg, mobytypes.CONTAINER)
            except orjson.JSONDecodeError as exc:
                self.warn(rel, f"not a valid container config: {exc}", "container", cid)
                continue
            except unmarshal.Mismatch as exc:
                # moby: container.FromDisk fails, and the daemon does not load the container.
                self.warn(rel, f"{exc}; container skipped", "container", cid)
                continue
            if not cfg or not isinstance(cfg.get("ID"), str) or not cfg["ID"]:
                self.warn(rel, "no ID; container skipped", "container", cid)
                continue
            ctr = _container(cfg, rel)
            if ctr.id != cid:
                self.warn(rel, f"ID {ctr.id} does not match its directory", "container", cid)
            out[ctr.id] = ctr
        return out

    def volumes(self) -> tuple[Volume, ...]:
        """The local driver's volumes (its directories), with the volume store's labels
        and options."""
        names = self.root.listdir(layout.VOLUMES) or []
        meta = {}
        if names:                 # the volume store's reader (bbolt) is imported only then
            from .volumestore import read_volume_metadata
            meta = read_volume_metadata(self.root, self.warn)
        out = []
        for name in names:
            st = self.root.lstat(layout.volume_dir(name))
            if st is None or not st.is_dir:
                continue                      # metadata.db, backingFsBlockDev
            found = meta.get(name)
            out.append(Volume(name=name, driver=found.driver or "local" if found else "local",
                              options=found.options if found else {}, size=-1,
                              source=layout.volume_dir(name),
                              labels=found.labels if found else {}))
        return tuple(out)


def _container(cfg: dict[str, Any], rel: str) -> Container:
    state = cfg.get("State") or {}
    user = cfg.get("Config") or {}
    health = (state.get("Health") or {}).get("Status") if state.get("Health") else None
    ports = _ports((cfg.get("NetworkSettings") or {}).get("Ports") or {})
    return Container(
        id=ContainerID(cfg["ID"]), name=(cfg.get("Name") or "").lstrip("/"),
        image_id=ImageID(cfg.get("Image") or ""), image=user.get("Image") or "",
        created=cfg.get("Created") or "", path=cfg.get("Path") or "",
        args=tuple(cfg.get("Args") or ()), running=bool(state.get("Running")),
        paused=bool(state.get("Paused")), restarting=bool(state.get("Restarting")),
        dead=bool(state.get("Dead")), removal_in_progress=bool(state.get("RemovalInProgress")),
        exit_code=int(state.get("ExitCode") or 0), started_at=state.get("StartedAt") or "",
        finished_at=state.get("FinishedAt") or "", health=health,
        labels=user.get("Labels") or {}, ports=ports,
        mounts=tuple((cfg.get("MountPoints") or {}).values()),
        networks=tuple(((cfg.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        source=rel,
        platform=cfg.get("ImagePlatform") if cfg.get("ImageManifest") and
        isinstance(cfg.get("ImagePlatform"), dict) else None,
        image_manifest=_manifest_digest(cfg.get("ImageManifest")),
        health_log=tuple(HealthResult(start=r.get("Start") or "", end=r.get("End") or "",
                                      exit_code=int(r.get("ExitCode") or 0),
                                      output=r.get("Output") or "")
                         for r in (state.get("Health") or {}).get("Log") or ()
                         if isinstance(r, dict)))


def _manifest_digest(descriptor: object) -> str | None:
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    return digest if isinstance(digest, str) else None


def _ports(settings: dict[str, Any]) -> tuple[Port, ...]:
    # moby v20.10 container/view.go: a port with no binding is listed once, exposed
    # only; each binding of a bound one is listed with its host address and port.
    out: list[Port] = []
    for key, bindings in settings.items():
        port, _, proto = key.partition("/")
        if not port.isdigit():
            continue
        if not bindings:
            out.append(Port(int(port), proto or "tcp"))
            continue
        for binding in bindings:
            host = str((binding or {}).get("HostPort") or "0")
            out.append(Port(int(port), proto or "tcp",
                            int(host) if host.isdigit() else 0, (binding or {}).get("HostIp") or ""))
    return tuple(out)


def created_unix_ns(created: object) -> int:
    """Unix nanoseconds of an RFC 3339 string; Go's zero time when absent or unreadable."""
    if not isinstance(created, str) or not created:
        return GO_ZERO_UNIX * 1_000_000_000
    try:
        return parse_rfc3339_ns(created)
    except ValueError:
        return GO_ZERO_UNIX * 1_000_000_000


def _decoded(data: bytes) -> tuple[str, Any]:
    """An image config's digest, and its document or why Unmarshal would refuse it."""
    try:
        config = orjson.loads(data)
        unmarshal.check(config, mobytypes.IMAGE)
    except (orjson.JSONDecodeError, unmarshal.Mismatch) as exc:
        return digest_of(data), exc
    return digest_of(data), config


def read_graphdriver_store(root: EvidenceRoot, driver: str) -> Store:
    """Build the model from ``image/<driver>/`` and ``containers/``."""
    loader = _Loader(root, driver)
    if root.reads_beside:
        # The layer store's files (35,000 layers: 140,000 of them) are read without the
        # GIL while this thread reads and decodes the image configs: on two CPUs the
        # reads hide most of the decoding. Nothing is warned of before both are done.
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(loader.layer_files)
            image_files = loader.image_files()
            layer_files = pending.result()
    else:
        layer_files, image_files = loader.layer_files(), loader.image_files()
    layers = loader.layers(*layer_files)
    images = loader.images(layers, image_files)
    references = loader.references(images)
    containers, mounts, volumes = loader.containers(), loader.mounts(), loader.volumes()
    if driver == "aufs":
        from . import aufslayers
        loader.diagnostics += aufslayers.check(root, layers, mounts)
    return Store(driver=driver, images=images, layers=layers, references=references,
                 containers=containers, mounts=mounts, volumes=volumes,
                 diagnostics=tuple(loader.diagnostics))


def read_containers(root: EvidenceRoot) -> tuple[dict[ContainerID, Container], list[Diagnostic]]:
    """Docker's own side of any root: ``containers/*/config.v2.json`` (also where the
    containerd image store keeps images: there ``Image`` is the manifest digest)."""
    loader = _Loader(root, "")
    return loader.containers(), loader.diagnostics


def read_docker_side(root: EvidenceRoot) -> tuple[dict[ContainerID, Container],
                                                 tuple[Volume, ...], list[Diagnostic]]:
    """Containers and volumes of a data root whose images are not in a graph driver."""
    loader = _Loader(root, "")
    return loader.containers(), loader.volumes(), loader.diagnostics


def detect(roots: Roots) -> Detected | None:
    """The graph driver whose image store the data root holds, if any.

    A root can keep the image stores of several drivers (the daemon was
    switched); dockerd then refuses to guess unless told. We take the first in
    dockerd's priority order that has a layer store and say so.
    """
    root = roots[layout.DATA_ROOT]
    present = [d for d in DRIVERS if root.lstat(layout.ImageRoot(d).layerdb) is not None
               or root.lstat(layout.ImageRoot(d).repositories_json) is not None]
    if not present:
        return None
    notes: tuple[Diagnostic, ...] = ()
    if len(present) > 1:
        notes = (Diagnostic(layout.IMAGE, f"image stores of several drivers "
                                          f"({', '.join(present)}); reading {present[0]}"),)
    return Detected(KIND, present[0], notes)


def read(roots: Roots, found: Detected) -> Store:
    root = roots[layout.DATA_ROOT]
    store = read_graphdriver_store(root, found.format)
    # A remapped daemon's root is named for its root user's host IDs (the analyst may
    # name it directly, or the registry found it in a data root's folders).
    root_ids = layout.remapped_root_ids(re.split(r"[/:]", root.path.rstrip("/"))[-1])
    if root_ids is not None:
        store = dataclasses.replace(store, root_ids=root_ids)
    if found.notes:
        store = dataclasses.replace(store, diagnostics=found.notes + store.diagnostics)
    return store


def _loop_text(kind: str, cycle: tuple[str, ...], cost: str) -> str:
    """The warning for each member of a parent cycle: the cycle, then what it costs."""
    return (f"parent chain loops back to this {kind} (a cycle of {len(cycle)}: "
            f"{' -> '.join(short_id(x) for x in cycle)}); {cost}")
