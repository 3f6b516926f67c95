"""The source registry (detection by content), the layout's paths, and the image service."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.errors import EvidenceError, UnsupportedLayoutError
from analyzer.service import ImageService
from analyzer.sources import layout, registry

HEX = "ab" * 32


def service(root: Path, warnings: list[str] | None = None) -> ImageService:
    return ImageService(str(root), warn=(warnings if warnings is not None else []).append)


def test_every_source_has_a_kind_a_detector_and_a_reader() -> None:
    found = list(registry.sources())
    kinds = [source.KIND for source in found]
    assert len(set(kinds)) == len(kinds) == len(registry.SOURCES)
    assert all(callable(s.detect) and callable(s.read) for s in found)


def test_a_graph_driver_store_is_found_by_its_layer_store(tmp_path: Path) -> None:
    (tmp_path / "image/vfs/layerdb").mkdir(parents=True)
    with service(tmp_path) as svc:
        assert svc.source == registry.Detected("graphdriver", "vfs", ())
        assert svc.store.driver == "vfs" and not svc.store.images


def test_several_drivers_read_the_first_in_dockerd_order_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "image/aufs/layerdb").mkdir(parents=True)
    (tmp_path / "image/overlay2").mkdir(parents=True)
    (tmp_path / "image/overlay2/repositories.json").write_text('{"Repositories":{}}')
    warnings: list[str] = []
    with service(tmp_path, warnings) as svc:
        assert svc.store.driver == "overlay2"
        assert svc.store is svc.store               # read once: warned once
    assert warnings == ["image: image stores of several drivers (overlay2, aufs); "
                        "reading overlay2"]


def test_a_containerd_image_store_without_its_metadata_names_the_file(tmp_path: Path) -> None:
    """Recognised by its snapshotter, read from its meta.db: without it, nothing answers."""
    (tmp_path / layout.ContainerdRoot().snapshotter("overlayfs")).mkdir(parents=True)
    with service(tmp_path) as svc, pytest.raises(EvidenceError) as err:
        svc.store
    assert svc.source.kind == "containerd"
    assert err.value.path == layout.ContainerdRoot().meta_db


def test_nothing_recognised_is_an_error_naming_the_root(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    with service(tmp_path) as svc, pytest.raises(UnsupportedLayoutError,
                                                 match="no image store found") as err:
        svc.store
    assert err.value.path == str(tmp_path)


def test_the_service_opens_nothing_until_asked(tmp_path: Path) -> None:
    svc = service(tmp_path / "missing")
    svc.close()                                     # nothing was opened
    with pytest.raises(EvidenceError, match="cannot open data root"):
        svc.roots


@pytest.mark.parametrize("path, want", [
    (layout.ImageRoot("overlay2").layer(f"sha256:{HEX}", "cache-id"),
     f"image/overlay2/layerdb/sha256/{HEX}/cache-id"),
    (layout.ImageRoot("overlay2").layer(HEX, layout.TAR_SPLIT),
     f"image/overlay2/layerdb/sha256/{HEX}/tar-split.json.gz"),
    (layout.ImageRoot("aufs").image_config(f"sha256:{HEX}"),
     f"image/aufs/imagedb/content/sha256/{HEX}"),
    (layout.ImageRoot("overlay2").image_metadata(HEX, "lastUpdated"),
     f"image/overlay2/imagedb/metadata/sha256/{HEX}/lastUpdated"),
    (layout.ImageRoot("overlay2").mount("c1", "mount-id"),
     "image/overlay2/layerdb/mounts/c1/mount-id"),
    (layout.ImageRoot("overlay2").repositories_json, "image/overlay2/repositories.json"),
    (layout.ImageRoot("overlay2").v2metadata_by_diffid(f"sha256:{HEX}"),
     f"image/overlay2/distribution/v2metadata-by-diffid/sha256/{HEX}"),
    (layout.container_config("c1"), "containers/c1/config.v2.json"),
    (layout.volume_data("v"), "volumes/v/_data"),
    (layout.diff_dir("overlay2", "x"), "overlay2/x/diff"),
    (layout.diff_dir("overlay", "x"), "overlay/x/root"),
    (layout.diff_dir("aufs", "x"), "aufs/diff/x"),
    (layout.diff_dir("vfs", "x"), "vfs/dir/x"),
    (layout.dm_device_metadata("base"), "devicemapper/metadata/base"),
    (layout.ContainerdRoot().blob(f"sha256:{HEX}"),
     f"containerd/daemon/io.containerd.content.v1.content/blobs/sha256/{HEX}"),
    (layout.ContainerdRoot("").snapshot("overlayfs", 7),
     "io.containerd.snapshotter.v1.overlayfs/snapshots/7"),
    (layout.ContainerdRoot().snapshotter_db("native"),
     "containerd/daemon/io.containerd.snapshotter.v1.native/metadata.db"),
])
def test_layout_spells_the_paths_dockerd_writes(path: str, want: str) -> None:
    assert path == want
