"""``docker image ls`` rows, as the Docker 28 CLI expands and prints them.

References: docker/cli cli/command/formatter/image.go (imageFormat,
imageFormatTaggedAndDigest, isDangling, imageContext), cli/command/image/list.go.
"""
from __future__ import annotations

from typing import Sequence

from .. import reference as refs
from ..engines.listing import NONE_DIGEST, NONE_TAG, ImageSummary
from ..goapi.json import marshal
from ..goapi.time import GO_ZERO_UNIX, string_local
from ..goapi.units import human_duration, human_size
from ..ids import short_id
from .table import render_table

NONE = "<none>"


def _is_dangling(s: ImageSummary) -> bool:
    if not s.repo_tags and not s.repo_digests:
        return True
    return s.repo_tags == (NONE_TAG,) and s.repo_digests == (NONE_DIGEST,)


def expand_rows(s: ImageSummary, with_digest: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows of one image.

    Docker walks its repository maps in Go map order (random); here repositories
    come in the order of the image's sorted references.
    """
    if _is_dangling(s):
        return [(NONE, NONE, NONE)]
    tags: dict[str, list[str]] = {}
    for ref in s.repo_tags:
        # docker/cli keeps only tagged names: the containerd store also lists a name
        # that has only a digest (``node@sha256:…``) among RepoTags.
        split = refs.split_familiar_tag(ref)
        if split is not None:
            tags.setdefault(split[0], []).append(split[1])
    digests: dict[str, list[str]] = {}
    for ref in s.repo_digests:
        name, _, digest = ref.rpartition("@")
        digests.setdefault(name, []).append(digest)
    rows: list[tuple[str, str, str]] = []
    for repo, repo_tags in tags.items():
        repo_digests = digests.pop(repo, [])
        if not with_digest:
            repo_digests = []
        for tag in repo_tags:
            if not repo_digests:
                rows.append((repo, tag, NONE))
            else:
                rows.extend((repo, tag, d) for d in repo_digests)
    for repo, repo_digests in digests.items():
        if with_digest:
            rows.extend((repo, NONE, d) for d in repo_digests)
        else:
            rows.append((repo, NONE, ""))
    return rows


def render_images(summaries: Sequence[ImageSummary], *, quiet: bool, digests: bool,
                  no_trunc: bool, fmt: str, now: float) -> str:
    def image_id(s: ImageSummary) -> str:
        return s.id if no_trunc else short_id(s.id)

    if fmt not in ("table", "json"):
        return _render_template(summaries, fmt, digests, image_id, now)
    if quiet and fmt == "table":
        return "".join(f"{image_id(s)}\n" for s in summaries
                       for _ in expand_rows(s, digests))
    if fmt == "json":
        lines = []
        for s in summaries:
            # "{{json .}}" names no .Digest: digests expand rows only with --digests.
            for repo, tag, digest in expand_rows(s, digests):
                lines.append(marshal(_json_row(s, repo, tag, digest, image_id(s), now)) + "\n")
        return "".join(lines)
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + \
        ["IMAGE ID", "CREATED", "SIZE"]
    rows = []
    for s in summaries:
        created = created_since(s.created, now) or "N/A"
        size = human_size(s.size, 3)
        for repo, tag, digest in expand_rows(s, digests):
            rows.append([repo, tag] + ([digest] if digests else []) +
                        [image_id(s), created, size])
    return render_table(header, rows)


HEADER = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
          "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
          "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
          "UniqueSize": "UNIQUE SIZE"}


def _render_template(summaries: Sequence[ImageSummary], fmt: str, digests: bool,
                     image_id, now: float) -> str:
    """A custom --format (formatter.NewImageFormat, ImageWrite): a table format gets a
    DIGEST column with --digests; rows expand by digest when the format names .Digest."""
    from .formatter import context, header_context, is_table, write
    if is_table(fmt) and digests and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"
    with_digest = digests or "{{.Digest}}" in fmt
    rows = [context("formatter.imageContext", _json_row(s, repo, tag, digest, image_id(s), now))
            for s in summaries for repo, tag, digest in expand_rows(s, with_digest)]
    return write(fmt, rows, header_context(HEADER))


def created_since(created_unix: int, now: float) -> str:
    """"3 weeks ago"; empty for Go's zero time (the CLI's IsZero check), which tables show as N/A."""
    if created_unix == GO_ZERO_UNIX:
        return ""
    return human_duration(now - created_unix) + " ago"


def _json_row(s: ImageSummary, repo: str, tag: str, digest: str, image_id: str,
              now: float) -> dict[str, str]:
    containers = "N/A" if s.containers == -1 else str(s.containers)
    shared = "N/A" if s.shared_size == -1 else human_size(s.shared_size)
    unique = "N/A" if s.shared_size == -1 or s.size == -1 else human_size(s.size - s.shared_size)
    return {
        "Containers": containers,
        "CreatedAt": string_local(s.created),
        "CreatedSince": created_since(s.created, now),
        "Digest": digest,
        "ID": image_id,
        "Repository": repo,
        "SharedSize": shared,
        "Size": human_size(s.size, 3),
        "Tag": tag,
        "UniqueSize": unique,
        "VirtualSize": human_size(s.size),
    }
