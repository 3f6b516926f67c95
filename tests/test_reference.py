"""Docker's reference grammar (distribution v2.8 in dockerd 20.10, v0.6.0 in the CLI)
and Go's path.Match, against the upstream tests' tables and the daemon's messages."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import DaemonError, InvalidReference
from analyzer.ids import ImageID
from analyzer.reference import (DigestReference, Named, digest_error, familiar_match,
                                familiar_without_digest, parse_any_reference,
                                parse_normalized_named, path_match, split_familiar_tag,
                                store_reference, tag_name_only)

HEX = "a" * 64
IMAGE = ImageID("sha256:" + "b" * 64)


@pytest.mark.parametrize("text,normalized,familiar,familiar_name", [
    ("busybox", "docker.io/library/busybox", "busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "busybox"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox", "busybox"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox", "busybox"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox", "busybox"),
    ("myorg/app:1.0", "docker.io/myorg/app:1.0", "myorg/app:1.0", "myorg/app"),
    ("library/x/y", "docker.io/library/x/y", "library/x/y", "library/x/y"),
    ("localhost/foo", "localhost/foo", "localhost/foo", "localhost/foo"),
    ("localhost:5000/foo:1", "localhost:5000/foo:1", "localhost:5000/foo:1", "localhost:5000/foo"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "localhost"),
    ("Quay.IO/x", "Quay.IO/x", "Quay.IO/x", "Quay.IO/x"),
    ("a.b-c_d__e--f", "docker.io/library/a.b-c_d__e--f", "a.b-c_d__e--f", "a.b-c_d__e--f"),
    ("sha256:abc", "docker.io/library/sha256:abc", "sha256:abc", "sha256"),
    (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}",
     f"busybox@sha256:{HEX}", "busybox"),
    (f"busybox:1@sha256:{HEX}", f"docker.io/library/busybox:1@sha256:{HEX}",
     f"busybox:1@sha256:{HEX}", "busybox"),
    # A first component with a dot is a domain even when the grammar then rejects it
    # as one: the name parses without a domain.
    ("foo_bar.com/x", "foo_bar.com/x", "foo_bar.com/x", "foo_bar.com/x"),
])
def test_normalize_and_familiarize(text: str, normalized: str, familiar: str,
                                   familiar_name: str) -> None:
    ref = parse_normalized_named(text)
    assert (str(ref), ref.familiar, ref.familiar_name) == (normalized, familiar, familiar_name)


@pytest.mark.parametrize("text,message", [
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("Foo/bar", "invalid reference format: repository name must be lowercase"),
    ("FOO/bar:1", "invalid reference format: repository name must be lowercase"),
    ("localhost:5000/Foo", "invalid reference format: repository name must be lowercase"),
    ("", "invalid reference format"),
    ("a b", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-foo", "invalid reference format"),
    ("foo@bar", "invalid reference format"),
    ("[::1]:5000/foo", "invalid reference format"),         # 20.10 has no IPv6 hosts
    ("busybox:" + "t" * 129, "invalid reference format"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("a" * 250 + "/b", "repository name must not be more than 255 characters"),
    ("busybox@sha256:" + "a" * 40, "invalid checksum digest length"),
    ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("busybox@Sha256:" + "a" * 64,                         # the "remote" runs to the first ":"
     "invalid reference format: repository name must be lowercase"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_normalized_named(text)
    assert str(info.value) == message


def test_cli_grammar_differs() -> None:
    ref = parse_normalized_named("Foo/bar:1", cli=True)
    assert (ref.domain, ref.path, ref.familiar) == ("Foo", "bar", "Foo/bar:1")
    assert str(parse_normalized_named("[::1]:5000/foo", cli=True)) == "[::1]:5000/foo"
    with pytest.raises(InvalidReference) as info:
        parse_normalized_named("Busybox", cli=True)
    assert str(info.value) == ("invalid reference format: repository name (library/Busybox) "
                               "must be lowercase")
    long_domain = "a" * 250 + ".com/b"
    assert parse_normalized_named(long_domain, cli=True).path == "b"


@pytest.mark.parametrize("text,expected", [
    (HEX, DigestReference("sha256:" + HEX)),
    ("sha256:" + HEX, DigestReference("sha256:" + HEX)),
    ("sha512:" + "c" * 128, DigestReference("sha512:" + "c" * 128)),
    ("sha256:abc", Named("docker.io", "library/sha256", "abc")),
    ("abc123", Named("docker.io", "library/abc123")),
])
def test_parse_any_reference(text: str, expected: object) -> None:
    assert parse_any_reference(text) == expected


@pytest.mark.parametrize("value,error", [
    ("sha256:" + HEX, None),
    ("sha384:" + "a" * 96, None),
    ("sha256:" + "a" * 63, "invalid checksum digest length"),
    ("sha256:" + "A" * 64, "invalid checksum digest format"),
    ("sha256:", "invalid checksum digest format"),
    (":" + HEX, "invalid checksum digest format"),
    (HEX, "invalid checksum digest format"),
    ("foo:bar", "unsupported digest algorithm"),
    ("Foo:bar", "invalid checksum digest format"),
])
def test_digest_validation(value: str, error: str | None) -> None:
    assert digest_error(value) == error


def test_tag_name_only() -> None:
    assert tag_name_only(parse_normalized_named("busybox")).familiar == "busybox:latest"
    assert tag_name_only(parse_normalized_named("busybox:1")).familiar == "busybox:1"
    digested = parse_normalized_named(f"busybox@sha256:{HEX}")
    assert tag_name_only(digested) == digested


def test_store_reference() -> None:
    ref = store_reference("localhost:5000/x", "localhost:5000/x:1", IMAGE)
    assert (ref.name, ref.familiar, ref.normalized, ref.is_digest, ref.tag) == (
        "localhost:5000/x", "localhost:5000/x:1", "localhost:5000/x:1", False, "1")
    digest = store_reference("busybox", f"busybox@sha256:{HEX}", IMAGE)
    assert digest.is_digest and digest.normalized == f"docker.io/library/busybox@sha256:{HEX}"


@pytest.mark.parametrize("repository,key", [
    ("busybox", "Busybox:latest"),                        # does not parse
    ("alpine", "busybox:latest"),                         # under another repository
    ("busybox", "docker.io/library/busybox:latest"),      # not familiar
    ("busybox", "busybox"),                               # neither tag nor digest
    ("busybox", f"busybox:1@sha256:{HEX}"),               # both
])
def test_store_reference_refuses(repository: str, key: str) -> None:
    with pytest.raises(InvalidReference):
        store_reference(repository, key, IMAGE)


def test_sorting_by_normalized_string() -> None:
    keys = ["test:latest", "test1:latest", "test2:latest", "busybox@sha256:" + HEX,
            "busybox:latest", "localhost:5000/x:1", "myorg/app:1", "zzz:1"]
    refs = sorted((store_reference(parse_normalized_named(k).familiar_name, k, IMAGE)
                   for k in keys), key=lambda r: r.normalized)
    assert [r.familiar for r in refs] == [
        "busybox:latest", "busybox@sha256:" + HEX, "test1:latest", "test2:latest",
        "test:latest", "zzz:1", "myorg/app:1", "localhost:5000/x:1"]


@pytest.mark.parametrize("image,expected", [
    ("busybox", "busybox"),
    ("busybox:1.36", "busybox:1.36"),
    (f"busybox@sha256:{HEX}", "busybox"),
    (f"docker.io/library/busybox:1@sha256:{HEX}", "busybox:1"),
    ("localhost:5000/x:2", "localhost:5000/x:2"),
    ("Not A Ref", None),
])
def test_familiar_without_digest(image: str, expected: str | None) -> None:
    assert familiar_without_digest(image) == expected


def test_split_familiar_tag() -> None:
    assert split_familiar_tag("localhost:5000/x:1") == ("localhost:5000/x", "1")
    assert split_familiar_tag("busybox:latest") == ("busybox", "latest")
    assert split_familiar_tag(f"busybox@sha256:{HEX}") is None    # the CLI skips it


# -- Go path.Match: the table of Go's path/match_test.go -----------------------------

BAD = "bad"


@pytest.mark.parametrize("pattern,name,expected", [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "abc", True), ("a*", "ab/c", False), ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False), ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True), ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False),
    ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True), ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False), ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True),
    ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False),
    ("[]a]", "]", BAD), ("[-]", "-", BAD), ("[x-]", "x", BAD), ("[x-]", "-", BAD),
    ("[x-]", "z", BAD), ("[-x]", "x", BAD), ("[-x]", "-", BAD), ("[-x]", "a", BAD),
    ("\\", "a", BAD), ("[a-b-c]", "a", BAD), ("[", "a", BAD), ("[^", "a", BAD),
    ("[^bc", "a", BAD), ("a[", "a", BAD), ("a[", "ab", BAD), ("a[", "x", BAD),
    ("a/b[", "x", BAD), ("*x", "xxx", True),
])
def test_path_match(pattern: str, name: str, expected: object) -> None:
    if expected == BAD:
        with pytest.raises(DaemonError, match="^syntax error in pattern$"):
            path_match(pattern, name)
    else:
        assert path_match(pattern, name) is expected


def ref(familiar: str):
    return store_reference(parse_normalized_named(familiar).familiar_name, familiar, IMAGE)


@pytest.mark.parametrize("pattern,familiar,expected", [
    ("busybox", "busybox:latest", True),
    ("busybox", f"busybox@sha256:{HEX}", True),
    ("busy*", "busybox:1.36", True),
    ("*", "busybox:latest", True),
    ("*", "myorg/app:1.0", False),
    ("busybox:1.*", "busybox:1.36", True),
    ("busybox:1.*", f"busybox@sha256:{HEX}", False),
    ("docker.io/library/busybox", "busybox:latest", False),
    ("myorg/*", "myorg/app:1.0", True),
])
def test_familiar_match(pattern: str, familiar: str, expected: bool) -> None:
    assert familiar_match(pattern, ref(familiar)) is expected


def test_familiar_match_bad_pattern() -> None:
    with pytest.raises(DaemonError, match="syntax error in pattern"):
        familiar_match("busybox[", ref("busybox:latest"))


@given(st.text(alphabet="ab/*?", max_size=8), st.text(alphabet="ab/", max_size=8))
def test_path_match_agrees_with_a_regex(pattern: str, name: str) -> None:
    import re
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                    for c in pattern)
    assert path_match(pattern, name) == (re.fullmatch(regex, name) is not None)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        ref = parse_any_reference(text)
    except InvalidReference:
        return
    if isinstance(ref, Named):
        assert parse_normalized_named(str(ref)) == ref
