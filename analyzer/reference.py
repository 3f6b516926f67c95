"""Docker's image reference grammar: parse, normalize, familiarize, match.

The daemon (dockerd 20.10) parses with github.com/docker/distribution/reference as
vendored in moby v20.10 (distribution v2.8). The Docker 28 CLI formats with
github.com/distribution/reference v0.6.0, whose grammar differs in four places:
an uppercase first path component is a domain, IPv6 hosts (``[::1]:5000``), the
255-character limit applies to the path only, and the lowercase error names the
repository. ``cli=True`` selects that grammar; everything the daemon decides uses
the default.

References: docker/distribution reference/{regexp,reference,normalize,helpers}.go
(v2.8.2, vendored by moby v20.10.24); distribution/reference v0.6.0 normalize.go;
opencontainers/go-digest v1.0.0 digest.go, algorithm.go; Go path/match.go.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import DaemonError, InvalidReference
from .ids import ImageID
from .model import Reference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_NAME = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# Go's messages, kept verbatim (reference.go, go-digest digest.go, path/match.go).
ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_DIGEST_INVALID_FORMAT = "invalid checksum digest format"
ERR_DIGEST_INVALID_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"
ERR_BAD_PATTERN = "syntax error in pattern"

# regexp.go. Go's separator is `(?:[._]|__|[-]*)`; `[-]+` matches the same names
# (an empty separator only splits a run of alphanumerics) without the exponential
# backtracking Python's engine would do on `[-]*`. Go's \w is ASCII.
_ALNUM = r"[a-z0-9]+"
_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|[-]+){_ALNUM})*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_DOMAIN_CLI = rf"(?:{_HOST}|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"   # v0.6.0: IPv6 hosts
_TAG = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"


def _reference_regexp(domain: str) -> re.Pattern[str]:
    return re.compile(rf"((?:{domain}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?")


def _name_regexp(domain: str) -> re.Pattern[str]:
    return re.compile(rf"(?:({domain})/)?({_PATH})")


_REFERENCE = _reference_regexp(_DOMAIN)
_REFERENCE_CLI = _reference_regexp(_DOMAIN_CLI)
_NAME = _name_regexp(_DOMAIN)
_NAME_CLI = _name_regexp(_DOMAIN_CLI)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")

# go-digest algorithm.go: the algorithms dockerd links, with their hex lengths.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_ANCHORED = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, slots=True)
class Named:
    """A named reference: repository, optional tag, optional digest.

    ``str()`` is Go's ``String()``, the normalized form Docker sorts by.
    """
    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)

    @property
    def familiar_name(self) -> str:
        # normalize.go familiarizeName: drop docker.io, then "library/" of a
        # two-component path.
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        first, sep, rest = self.path.partition("/")
        if first == OFFICIAL_REPO_NAME and sep and "/" not in rest:
            return rest
        return self.path

    @property
    def familiar(self) -> str:
        """Go's FamiliarString: ``busybox:latest``, ``myorg/app@sha256:…``."""
        return self.familiar_name + _suffix(self.tag, self.digest)

    @property
    def is_name_only(self) -> bool:
        return not self.tag and not self.digest

    def trim(self) -> Named:
        """TrimNamed: the repository alone."""
        return Named(self.domain, self.path)


@dataclass(frozen=True, slots=True)
class DigestReference:
    """A bare digest (``sha256:<hex>``), as ParseAnyReference returns for IDs."""
    digest: str

    def __str__(self) -> str:
        return self.digest

    @property
    def familiar(self) -> str:
        return self.digest


def _suffix(tag: str, digest: str) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def digest_error(value: str) -> str | None:
    """go-digest Digest.Validate: None when valid, else Go's error text."""
    i = value.find(":")
    if i <= 0 or i + 1 == len(value):
        return ERR_DIGEST_INVALID_FORMAT
    algorithm, encoded = value[:i], value[i + 1:]
    size = _DIGEST_HEX_LENGTH.get(algorithm)
    if size is None:
        if _DIGEST_ANCHORED.fullmatch(value) is None:
            return ERR_DIGEST_INVALID_FORMAT
        return ERR_DIGEST_UNSUPPORTED
    if len(encoded.encode()) != size:           # Go counts bytes
        return ERR_DIGEST_INVALID_LENGTH
    if _LOWER_HEX.fullmatch(encoded) is None:
        return ERR_DIGEST_INVALID_FORMAT
    return None


def is_identifier(value: str) -> bool:
    """64 lowercase hex: an image ID without its algorithm."""
    return len(value) == 64 and _IDENTIFIER.fullmatch(value) is not None


def parse(value: str, *, cli: bool = False) -> Named:
    """reference.Parse of a string that has a domain (ParseNormalizedNamed's input).

    Raises:
        InvalidReference: with Go's error text.
    """
    regexp = _REFERENCE_CLI if cli else _REFERENCE
    match = regexp.fullmatch(value)
    if match is None:
        if not value:
            raise InvalidReference("repository name must have at least one component")
        if regexp.fullmatch(value.lower()) is not None:
            raise InvalidReference(ERR_NAME_CONTAINS_UPPERCASE)
        raise InvalidReference(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    name_match = (_NAME_CLI if cli else _NAME).fullmatch(name)
    assert name_match is not None
    domain, path = name_match.group(1) or "", name_match.group(2)
    # v2.8 limits the whole name, v0.6.0 only the path.
    if len(path if cli else name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(ERR_NAME_TOO_LONG)
    if digest:
        error = digest_error(digest)
        if error is not None:
            raise InvalidReference(error)
    # getBestReferenceType's nameless cases cannot occur: callers always pass a
    # domain, so the name is never empty.
    return Named(domain, path, tag, digest)


def split_docker_domain(value: str, *, cli: bool = False) -> tuple[str, str]:
    """normalize.go splitDockerDomain: (domain, remainder)."""
    first, sep, rest = value.partition("/")
    is_domain = sep and (first == "localhost" or any(c in first for c in ".:")
                         # v0.6.0: an uppercase first component is a domain too.
                         or (cli and first.lower() != first))
    domain, remainder = (first, rest) if is_domain else (DEFAULT_DOMAIN, value)
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPO_NAME}/{remainder}"
    return domain, remainder


def parse_normalized_named(value: str, *, cli: bool = False) -> Named:
    """ParseNormalizedNamed: ``busybox`` → ``docker.io/library/busybox``.

    Raises:
        InvalidReference: with Go's error text, e.g. ``invalid reference format:
            repository name must be lowercase``.
    """
    if is_identifier(value):
        raise InvalidReference(
            f"invalid repository name ({value}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(value, cli=cli)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        if cli:
            raise InvalidReference(
                f"invalid reference format: repository name ({remote}) must be lowercase")
        raise InvalidReference("invalid reference format: repository name must be lowercase")
    return parse(f"{domain}/{remainder}", cli=cli)


def parse_any_reference(value: str) -> Named | DigestReference:
    """ParseAnyReference: a 64-hex ID or a valid digest is a digest reference."""
    if is_identifier(value):
        return DigestReference("sha256:" + value)
    if digest_error(value) is None:
        return DigestReference(value)
    return parse_normalized_named(value)


def tag_name_only(ref: Named) -> Named:
    """TagNameOnly: add ``latest`` when there is neither tag nor digest."""
    return Named(ref.domain, ref.path, DEFAULT_TAG) if ref.is_name_only else ref


def favor_digest(ref: Named) -> Named:
    """reference/store.go favorDigest: a tag+digest reference is stored by digest."""
    return Named(ref.domain, ref.path, "", ref.digest) if ref.tag and ref.digest else ref


def store_reference(repository: str, key: str, image_id: ImageID) -> Reference:
    """The model Reference of one repositories.json entry.

    dockerd (reference/store.go reload) parses each key with ParseNormalizedNamed
    and sorts an image's references by the normalized ``String()``.

    Raises:
        InvalidReference: the key does not parse (dockerd skips it silently), or the
            entry is not in the familiar form dockerd writes (it could never be found
            or deleted by name; it is reported rather than half-modelled).
    """
    ref = parse_normalized_named(key)
    if ref.familiar_name != repository or ref.familiar != key or bool(ref.tag) == bool(ref.digest):
        raise InvalidReference(
            f"reference {key!r} under repository {repository!r} is not one dockerd writes")
    return Reference(name=repository, familiar=key, normalized=str(ref),
                     image_id=image_id, is_digest=bool(ref.digest))


def familiar_without_digest(image: str) -> str | None:
    """The CLI's short form of a container's image (docker/cli formatter
    ContainerContext.Image): the familiar name and tag, digest dropped; None when
    the string is not a reference."""
    try:
        ref = parse_normalized_named(image, cli=True)
    except InvalidReference:
        return None
    return Named(ref.domain, ref.path, ref.tag).familiar


def split_familiar_tag(familiar: str) -> tuple[str, str] | None:
    """(FamiliarName, tag) of a RepoTags entry, as the CLI's image formatters split it;
    None when it has no tag (the CLI skips it)."""
    ref = parse_normalized_named(familiar, cli=True)
    if not ref.tag:
        return None
    return ref.familiar_name, ref.tag


def familiar_match(pattern: str, ref: Reference) -> bool:
    """FamiliarMatch: the pattern matches the familiar string, or else the name.

    Raises:
        DaemonError: ``syntax error in pattern``, from the first match only, as Go.
    """
    if path_match(pattern, ref.familiar):
        return True
    try:
        return path_match(pattern, ref.name)
    except DaemonError:
        return False


# -- Go path.Match -------------------------------------------------------------------

def path_match(pattern: str, name: str) -> bool:
    """Go path.Match (Go 1.19): ``*`` and ``?`` never match ``/``.

    Raises:
        DaemonError: ``syntax error in pattern`` (path.ErrBadPattern).
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name          # a trailing * matches the rest but not a /
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            rest = _match_after_star(chunk, name, last=not pattern)
            if rest is not None:
                name = rest
                continue
        # Go reports a malformed remainder of the pattern even on a mismatch.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def _match_after_star(chunk: str, name: str, last: bool) -> str | None:
    # The star skips 1, 2, ... characters, never a "/"; the last chunk must end the name.
    i = 0
    while i < len(name) and name[i] != "/":
        rest = _match_chunk(chunk, name[i + 1:])
        if rest is not None and not (last and rest):
            return rest
        i += 1
    return None


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, s: str) -> str | None:
    """The rest of ``s`` after ``chunk`` matched its start, or None.

    Like Go, it keeps parsing the chunk after a mismatch to report a bad pattern.
    """
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if not failed and lo <= r <= hi:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise DaemonError(ERR_BAD_PATTERN)
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise DaemonError(ERR_BAD_PATTERN)
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise DaemonError(ERR_BAD_PATTERN)
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise DaemonError(ERR_BAD_PATTERN)
    return r, rest
