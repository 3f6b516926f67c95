"""`docker image rm` on the containerd image store: the planner prints what dockerd 28.5
printed, and the bytes the replayed garbage collection frees are what `du` of the real
data root lost, on every recorded case of the `containerd` scenario."""
from __future__ import annotations

import pytest

from analyzer.engines.containerdreclaim import reclaim
from analyzer.engines.containerdrmi import (check_truncated_id, get_same_references,
                                            is_image_id_prefix, plan_rmi)
from analyzer.containerdmodel import Descriptor, Image
from analyzer.reference import parse_normalized_named
from analyzer.containerdservice import locate
from analyzer.render.rm import format_rm
from analyzer.sources.containerdstore import ContainerdMeter
from analyzer.sources.evidence import open_root
from tests.oracle.record import rm_cases

RM_CASES = [c for c in rm_cases(containerd_store=True) if c.template[1] == "rm"]


def _args(argv):
    options = [a for a in argv if a in ("-f", "--no-prune")]
    return [a for a in argv if a not in options], "-f" in options, "--no-prune" not in options


def _plan(rec, entry):
    data_root = str(rec.rm_root(entry))
    images = locate(data_root, open_root(data_root))
    args, force, prune = _args(entry["docker"][2:])
    plan = plan_rmi(images.store.meta.images_of("moby"), list(images.store.containers.values()),
                    args, force, prune)
    return images.root, images.store, plan, force


@pytest.mark.parametrize("case", RM_CASES, ids=str)
def test_rm_prints_what_dockerd28_printed(oracle, case):
    rec = oracle[case.scenario]
    entry = rec.data["rm"][case.index]
    root, store, plan, force = _plan(rec, entry)
    assert not store.diagnostics
    assert format_rm(plan, force) == (entry["stdout"], entry["stderr"], entry["rc"])


@pytest.mark.parametrize("case", RM_CASES, ids=str)
def test_reclaim_bytes_are_what_du_lost(oracle, case):
    rec = oracle[case.scenario]
    entry = rec.data["rm"][case.index]
    root, store, plan, _ = _plan(rec, entry)
    meter = ContainerdMeter(root, store)
    result = reclaim(store.meta, plan, int(entry["t_after"] * 1e9), blobs_present=store.blobs,
                     backends=store.backends, blob_bytes=meter.blob_bytes,
                     snapshot_bytes=meter.snapshot_bytes, freed_bytes=meter.freed_bytes)
    lost = entry["du_before"] - entry["du_after"]
    assert abs(result.bytes_freed - lost) <= 4096, (result, lost)
    if result.deleted_images:
        assert result.deleted_blobs or result.deleted_snapshots or result.held_blobs


# -- rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("value, hex_", [("abcd", "abcd"), ("sha256:abcd", "abcd"),
                                         ("abc", ""), ("ABCD", ""), ("a" * 65, "")])
def test_check_truncated_id(value, hex_):
    assert check_truncated_id(value) == hex_


def test_is_image_id_prefix():
    assert is_image_id_prefix("sha256:abcdef", "abc")
    assert is_image_id_prefix("sha256:abcdef", "sha256:ab")
    assert not is_image_id_prefix("sha256:abcdef", "bcd")


def _img(name, digest="sha256:" + "a" * 64):
    return Image("moby", name, Descriptor("m", digest, 1), {}, {}, None, None)


def test_same_references_digest_refs_go_with_the_last_tag():
    tagged = _img("docker.io/library/redis:7")
    by_digest = _img("docker.io/library/redis@sha256:" + "a" * 64)
    other = _img("docker.io/cache/redis:7")
    named = parse_normalized_named("redis:7")
    assert get_same_references(named, [by_digest, tagged, other]) == [tagged, by_digest]
    second_tag = _img("docker.io/library/redis:8")
    assert get_same_references(named, [by_digest, tagged, second_tag]) == [tagged]


def test_last_name_of_image_used_by_stopped_container_forced_keeps_it_dangling():
    from analyzer.model import Container
    image = _img("docker.io/library/app:1")
    ctr = Container(id="c" * 64, name="x", image_id=image.target.digest, image="app:1",
                    created="", path="", args=(), running=False, paused=False,
                    restarting=False, dead=False, removal_in_progress=False, exit_code=0,
                    started_at="", finished_at="", health=None, labels={}, ports=(),
                    mounts=(), networks=(), source="")
    plan = plan_rmi([image], [ctr], ["app:1"], force=True)
    assert format_rm(plan, True) == ("Untagged: app:1\n", "", 0)
    assert [i.name for i in plan.state.images] == ["moby-dangling@" + image.target.digest]
    refused = plan_rmi([image], [ctr], ["app:1"])
    assert refused.errors[0].message == (
        "conflict: unable to delete app:1 (must be forced) - container cccccccccccc is "
        "using its referenced image aaaaaaaaaaaa")
