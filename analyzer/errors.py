"""One tree of errors; the CLI catches it once and maps ``exit_code``."""
from __future__ import annotations


class AnalyzerError(Exception):
    exit_code = 2


class EvidenceError(AnalyzerError):
    """Something in the data root cannot be read as what it should be."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsafePathError(EvidenceError):
    """A path or link would lead outside the data root. Raised only by the opener."""


class MalformedError(EvidenceError):
    """Bad JSON, struct, or checksum. Parsers raise nothing else."""


class UnsupportedLayoutError(EvidenceError):
    """A layout this tool detects but does not read (yet)."""


class DaemonError(AnalyzerError):
    """What dockerd itself would refuse; ``str()`` is Docker's exact text."""
    exit_code = 1


class NotFound(DaemonError):
    """errdefs.NotFound (HTTP 404): ``docker image rm -f`` does not fail on it."""


class NoSuchImage(NotFound):
    pass


class NoSuchContainer(NotFound):
    pass


class InvalidReference(DaemonError):
    pass
