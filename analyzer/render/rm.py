"""``docker image rm`` as the Docker 28 CLI prints it and exits.

References: docker/cli v28 cli/command/image/remove.go (runRemove); moby v1.9.1
api/client/rmi.go (CmdRmi), docker/docker.go (main: the error printed, exit 1).
"""
from __future__ import annotations

from typing import Protocol, Sequence

from ..engines.rmi import Outcome, Record


class Removal(Protocol):
    """What rm prints from: the plan of engines/rmi.py or of engines/containerdrmi.py."""

    @property
    def records(self) -> Sequence[Record]: ...

    @property
    def errors(self) -> Sequence[Outcome]: ...


def exit_status(plan: Removal, force: bool) -> int:
    """runRemove fails unless ``-f`` was given and every error is a NotFound."""
    return int(bool(plan.errors) and (not force or not all(o.not_found for o in plan.errors)))


def format_rm(plan: Removal, force: bool) -> tuple[str, str, int]:
    """What ``docker image rm`` prints: (stdout, stderr, exit status).

    runRemove prints each successful call's records as it completes and then all
    errors joined by newlines (errors.Join).
    """
    out = "".join(f"{r.kind}: {r.value}\n" for r in plan.records)
    err = "".join(f"Error response from daemon: {o.message}\n" for o in plan.errors)
    return out, err, exit_status(plan, force)


def format_rmi_v1(plan: Removal) -> tuple[str, str, int]:
    """What the v1.9.1 client printed: each call's error as it came, then one line naming
    every argument that failed (``%v`` of a Go string slice), exit status 1."""
    out, err, _ = format_rm(plan, False)
    if plan.errors:
        err += f"Error: failed to remove images: [{' '.join(o.argument for o in plan.errors)}]\n"
    return out, err, int(bool(plan.errors))
