"""``docker image rm`` as the Docker 28 CLI prints it and exits.

References: docker/cli v28 cli/command/image/remove.go (runRemove).
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
