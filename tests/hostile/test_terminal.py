"""Class 9 of issue 10: the analyst's terminal.

Escape sequences in a label, a ``created_by``, a container's command or a file name
reached the terminal raw (``ESC[2J`` clears the screen); a name on disk that is not
UTF-8 crashed every command that printed it to stdout, and showed on stderr as
``\\udcff``. Now every control character but ``\\n`` and ``\\t`` is printed ``\\u00XX``,
every byte that is not UTF-8 ``\\xNN`` (with ``<field>_b64`` in analyzer's JSON), and
one warning says so; JSON output stays JSON with the same values.
"""
from __future__ import annotations

import base64
import json
import os

from . import LAYERDB, edit_json, image_id, rewrite_config

ESC_LABEL = "\x1b[2Jgone\x9b31m"
ESCAPED_LABEL = "\\u001b[2Jgone\\u009b31m"
WEB = "7dc838d5105eca6a6b8f245033e7b58ddb4678b3dbb1707c89d2fc71c1bb782a"
BAD_DIR = b"containers/bad\xffname"
WARNED_DIR = "containers/bad\\xffname/config.v2.json"


def _no_controls(text: str) -> None:
    assert not any(ord(c) < 0x20 and c not in "\n\t" or 0x80 <= ord(c) < 0xa0 for c in text), \
        repr(text)


def _escape_warning(result, controls: bool = True, not_utf8: bool = False) -> None:
    escaped = [w for w in result.warnings() if w.startswith("output: ")]
    assert len(escaped) == 1, result.describe()       # once per command
    assert ("\\u00XX" in escaped[0]) == controls and ("\\xNN" in escaped[0]) == not_utf8


def test_escapes_in_labels_history_and_commands(sample_root, damaged, baseline):
    ev = damaged(sample_root)
    nginx = image_id(sample_root, "nginx:latest")[7:]

    def plant(config: dict) -> None:
        config["config"]["Labels"] = {"evil": ESC_LABEL}
        config["history"][-1]["created_by"] = "/bin/sh -c #(nop) LABEL x=\x1b]8;;http://x\x07"
    new = rewrite_config(ev.path, nginx, plant)

    def container(config: dict) -> None:
        config.update(Path="nginx\r\x1b[2K", Image=f"sha256:{new}")
        config["Config"]["Labels"] = {"evil": ESC_LABEL}
    edit_json(ev.path / "containers" / WEB / "config.v2.json", container)
    ev.seal()

    got = ev.run("inspect", "--format", "{{.Config.Labels}}", "nginx:latest").check()
    assert got.out == f"map[evil:{ESCAPED_LABEL}]\n"
    _escape_warning(got)
    # Docker's JSON escapes C0 itself and leaves C1 raw; ours writes C1 as JSON's \u009b:
    # the same value, nothing raw.
    for args in [("inspect", "nginx:latest"),
                 ("inspect", "--format", "{{json .Config.Labels}}", "nginx:latest")]:
        got = ev.run(*args).check()
        _no_controls(got.out)
        labels = json.loads(got.out)
        labels = labels[0]["Config"]["Labels"] if args[1] == "nginx:latest" else labels
        assert labels == {"evil": ESC_LABEL}
        _escape_warning(got)

    got = ev.run("history", "--no-trunc", "nginx:latest").check()
    _no_controls(got.out)
    assert "LABEL x=\\u001b]8;;http://x\\u0007" in got.out
    _escape_warning(got)

    got = ev.run("ps", "-a", "--format", "{{.Names}} {{.Labels}}").check()
    assert got.out == f"cache \nweb evil={ESCAPED_LABEL}\n"
    _escape_warning(got)
    # Docker quotes a command (strconv.Quote) itself; what has nothing left to escape
    # prints as before, with no warning.
    got = ev.run("ps", "-a", "--no-trunc").check()
    assert '"nginx\\r\\x1b[2K -g \'daemon off;\'"' in got.out
    for args in [("ls",), ("df",), ("ps", "-a", "--no-trunc")]:
        got = ev.run(*args).check()
        assert not [w for w in got.warnings() if w.startswith("output: ")], got.describe()


def test_a_file_name_with_escapes_in_a_layer(sample_root, damaged):
    ev = damaged(sample_root)
    redis = image_id(sample_root, "redis:alpine")
    cache = sorted(os.listdir(ev.path / "overlay2"))[0]
    name = b"\x1b[2J\xff\x9b.txt"
    with open(os.path.join(os.fsencode(ev.path / "overlay2" / cache / "diff"), name), "wb") as f:
        f.write(b"planted\n")
    ev.seal()
    got = ev.run("verify").check(1)
    _no_controls(got.out)
    assert "added  \\u001b[2J\\xff\\x9b.txt: " in got.out, got.describe()
    _escape_warning(got, controls=True, not_utf8=True)
    report = json.loads(ev.run("verify", "--json").check(1).out)
    added = [b for layer in report["layers"] for b in layer["bad_files"] if b["reason"] == "added"]
    assert [base64.b64decode(b["path_b64"]) for b in added] == [name]
    assert {i["id"] for i in report["images"]} >= {redis}


def test_a_name_that_is_not_utf8_in_every_json(sample_root, damaged, baseline):
    """A warning naming a directory whose name is not UTF-8 crashed every --json."""
    ev = damaged(sample_root)
    bad = os.path.join(os.fsencode(ev.path), BAD_DIR)
    os.mkdir(bad)
    with open(os.path.join(bad, b"config.v2.json"), "wb") as f:
        f.write(b"{not json")
    ev.seal()
    for args in [("prune", "--json"), ("prune", "-a", "--json"), ("verify", "--json"),
                 ("reclaim", "--json", "nginx:latest")]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc)
        assert got.warned(WARNED_DIR), got.describe()
        _escape_warning(got, controls=False, not_utf8=True)
        doc = json.loads(got.out)
        assert doc["complete"] is False
        [damage] = doc["damaged"]
        assert damage["file"] == WARNED_DIR
        assert base64.b64decode(damage["file_b64"]) == BAD_DIR + b"/config.v2.json"
        assert base64.b64decode(damage["id_b64"]) == b"bad\xffname"
        assert doc["warnings"] == [w for w in got.warnings() if not w.startswith("output: ")]
    for args in [("ls", "--format", "json"), ("ps", "-a", "--format", "json"), ("df", "-v"),
                 ("ps", "-a")]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc)
        assert got.out == want.out
        assert got.warned(WARNED_DIR), got.describe()
    assert "\\udc" not in got.err


def test_a_layer_directory_whose_name_is_not_utf8(sample_root, damaged, baseline):
    """dockerd joins a cache-id's bytes to its home, whatever they are: so does analyze
    (a name read as U+FFFD named no directory, and the layer was reported gone)."""
    ev = damaged(sample_root)
    centos = "2e37a15d485b4f9f8c209a55665cc5f645b61965011ea0cec1379b2f234a3f03"
    cache_file = ev.path / LAYERDB / centos / "cache-id"
    cache = cache_file.read_text().strip()
    raw = b"caf\xe9-" + cache.encode()
    os.rename(ev.path / "overlay2" / cache, os.path.join(os.fsencode(ev.path / "overlay2"), raw))
    cache_file.write_bytes(raw)
    ev.seal()
    for args in [("ls",), ("df",), ("verify", "-q"), ("history", "centos")]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc)
        assert got.out == want.out, got.describe()
    for args in [("prune", "-a", "--json"), ("verify", "--json")]:
        want = json.loads(baseline(sample_root, *args).out)
        doc = json.loads(ev.run(*args).check(1 if args[0] == "verify" else 0).out)
        layers = doc["deleted_layers" if args[0] == "prune" else "layers"]
        [layer] = [x for x in layers if x["chain_id"] == f"sha256:{centos}"]
        [before] = [x for x in want["deleted_layers" if args[0] == "prune" else "layers"]
                    if x["chain_id"] == f"sha256:{centos}"]
        assert layer["cache_id"] == "caf\\xe9-" + cache
        assert base64.b64decode(layer["cache_id_b64"]) == raw
        assert layer.get("bytes") == before.get("bytes")
        assert layer.get("status") == before.get("status")
        assert doc["complete"] is True
    # Go's JSON writes the byte as U+FFFD, as dockerd's inspect would.
    inspected = json.loads(ev.run("inspect", "centos").check().out)[0]
    assert inspected["GraphDriver"]["Data"]["UpperDir"].endswith(f"/caf\ufffd-{cache}/diff")
