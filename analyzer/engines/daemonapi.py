"""Which daemon a data root is answered as: the API version it speaks.

The Docker 28 CLI negotiates down to the daemon's API version, and the daemon's
answers changed with it: from Docker 23 (API 1.42) volume prune removes only
anonymous volumes unless ``all`` is true, the filters' errors are worded in lower
case ("invalid filter 'x'") and the build cache's ``until`` takes a timestamp as well
as a duration; from Docker 25 (API 1.44) an image's Created is optional (an image
without one lists as created at 0, "56 years ago", is left out by before, since and
until, and its inspect has no Created) and an image's shared size counts every image's
layers, not only the listed ones'. The two judges here are dockerd 20.10 (API 1.41) and dockerd 28.5
(API 1.51); a root is answered as the one whose files it has (sources.daemoninfo).

References: moby v23.0.0 api/server/router/volume/volume_routes.go (postVolumesPrune),
api/types/filters/parse.go (invalidFilter), daemon/daemon.go (engine-id); moby v28.5.2
daemon/images/image_list.go (Images, newImageSummary), image_prune.go (ImagesPrune).
"""
from __future__ import annotations

from .rmi import API_VERSION as API_20_10

API_28_5 = "1.51"


def at_least(api: str, version: str) -> bool:
    """versions.GreaterThanOrEqualTo over dotted numbers."""
    return tuple(map(int, api.split("."))) >= tuple(map(int, version.split(".")))


def invalid_filter(api: str, key: str) -> str:
    """Args.Validate's message for a filter key the endpoint does not take."""
    return f"{'invalid' if at_least(api, '1.42') else 'Invalid'} filter '{key}'"


def created_is_optional(api: str) -> bool:
    """image.Image.Created is a pointer (moby 25+): an image without one is not at Go's
    zero time but has no time at all."""
    return at_least(api, "1.44")
