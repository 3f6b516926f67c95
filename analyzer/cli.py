"""The ``analyze`` command: Docker's answers from a data root, with no daemon.

Commands that stand in for a Docker command print what the Docker 28 CLI
prints and exit as it does; damage in the evidence goes to stderr as
``analyze: warning: FILE: reason`` lines.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NoReturn

import click

from .errors import AnalyzerError, DaemonError, NotFound
from .service import AnalystFile, ImageService

if TYPE_CHECKING:
    from .engines.containerdreclaim import Reclaim as ContainerdReclaim
    from .engines.systemprune import SystemPrune


@dataclass
class Context:
    service: ImageService
    now: float


class _Terminal:
    """The one way out to the analyst's terminal: every line the command prints from
    the evidence is escaped here (render/terminal.py), and counted, so that the
    command ends with one warning saying what was escaped."""

    def __init__(self) -> None:
        self.controls = 0
        self.bytes_not_utf8 = 0

    def echo(self, text: str, *, err: bool = False, nl: bool = True) -> None:
        from .render.terminal import escape
        safe = escape(text)
        self.controls += safe.controls
        self.bytes_not_utf8 += safe.bytes_not_utf8
        click.echo(safe.text, err=err, nl=nl)

    def finish(self) -> None:
        """The command's one warning about escaped output, if any."""
        from .render.terminal import escaped_warning
        message = escaped_warning(self.controls, self.bytes_not_utf8)
        if message is not None:
            click.echo(f"analyze: warning: {message}", err=True)
        self.controls = self.bytes_not_utf8 = 0


_TERMINAL = _Terminal()
echo = _TERMINAL.echo


def warn(message: str) -> None:
    echo(f"analyze: warning: {message}", err=True)


def note(message: str) -> None:
    """What analyze chose for the analyst: said once, on stderr, never on stdout."""
    echo(f"analyze: {message}", err=True)


def daemon_error(err: DaemonError) -> NoReturn:
    """What the Docker CLI does with an error response: stderr, exit 1."""
    echo(f"Error response from daemon: {err}", err=True)
    sys.exit(1)


def analysis(ctx: Context, source_kind: str):
    """The provenance of analyzer's own JSON answers."""
    from . import __version__
    from .render.analysis import Analysis
    return Analysis(version=__version__, source=ctx.service.source_name,
                    source_kind=source_kind, as_of=ctx.now, analyzed_at=time.time())


def parse_as_of(value: str | None) -> float:
    if value is None:
        return time.time()
    try:
        return float(value)
    except ValueError:
        pass
    from .goapi.time import parse_rfc3339_ns
    try:
        return parse_rfc3339_ns(value) / 1e9
    except ValueError:
        raise click.BadParameter(f"not RFC 3339 or Unix seconds: {value!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-root", "--source", "data_root", default="/var/lib/docker",
              show_default=True,
              help="Docker data root, OCI image layout or docker save archive: a directory, "
                   "or a .tar/.tar.gz/.tar.zst of one.")
@click.option("--as-of", "as_of", metavar="TIME",
              help="The 'now' of relative times and 'until' filters (RFC 3339 or Unix seconds).")
@click.option("--containerd-root", metavar="PATH",
              help="A system containerd's root holding the images (default: "
                   "<data-root>/containerd/daemon, else the data root's sibling ../containerd).")
@click.option("--containerd-namespace", metavar="NS", default="moby", show_default=True,
              help="The containerd namespace Docker's images are in.")
@click.pass_context
def main(ctx: click.Context, data_root: str, as_of: str | None, containerd_root: str | None,
         containerd_namespace: str) -> None:
    """Offline analyzer for Docker's on-disk storage."""
    now = parse_as_of(as_of)
    ctx.obj = Context(ctx.with_resource(ImageService(data_root, warn, containerd_root,
                                                     containerd_namespace, note)), now)


pass_context = click.make_pass_decorator(Context)


@contextlib.contextmanager
def _format_errors():
    """A --format template the CLI cannot use: its message on stderr, exit 1."""
    from .render import FormatError
    try:
        yield
    except FormatError as exc:
        echo(str(exc), err=True)
        sys.exit(1)


def _filters(values: tuple[str, ...], flag: str, command: str) -> dict[str, list[str]]:
    """Parse --filter values; a malformed one is a usage error, worded and exited as Docker's."""
    from .goapi.opts import BadFilter, parse_filters
    try:
        return parse_filters(values)
    except BadFilter as exc:
        bad = next(v for v in values if "=" not in v)
        echo(f'invalid argument "{bad}" for "{flag}" flag: {exc}\n'
                   f"See 'analyze {command} --help'.", err=True)
        sys.exit(125)


@main.command("ls")
@click.option("-a", "--all", "all_images", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default="table", metavar="FORMAT",
              help="'table', 'table TEMPLATE', 'json', or a Go template, as Docker's")
@click.argument("repository", required=False)
@pass_context
def ls_command(ctx: Context, all_images: bool, quiet: bool, digests: bool, no_trunc: bool,
               filters: tuple[str, ...], fmt: str, repository: str | None) -> None:
    """List images, as `docker image ls`."""
    from .render.images import render_images
    parsed = _filters(filters, "-f, --filter", "ls")
    if repository:
        parsed.setdefault("reference", []).append(repository)
    try:
        summaries = ctx.service.images(parsed, all_images, ctx.now)
    except DaemonError as exc:
        daemon_error(exc)
    with _format_errors():
        echo(render_images(summaries, quiet=quiet, digests=digests, no_trunc=no_trunc,
                                 fmt=fmt or "table", now=ctx.now), nl=False)


@main.command("ps")
@click.option("-a", "--all", "all_containers", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default="", metavar="FORMAT",
              help="'table', 'table TEMPLATE', 'json', or a Go template, as Docker's")
@pass_context
def ps_command(ctx: Context, all_containers: bool, quiet: bool, size: bool, last: int,
               latest: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str) -> None:
    """List containers, as `docker ps`."""
    from .render.containers import format_needs_size, render_ps
    parsed = _filters(filters, "-f, --filter", "ps")
    if fmt and quiet:
        echo("WARNING: Ignoring custom format, because both --format and --quiet are set.",
                   err=True)
    with _format_errors():
        if fmt and format_needs_size(fmt, ctx.now) and not quiet:
            size = True
    limit = 1 if latest and last == -1 else last
    service = ctx.service
    try:
        ctrs = service.containers(parsed, all_containers, limit)
    except DaemonError as exc:
        daemon_error(exc)
    sizes = service.container_sizes(ctrs) if size else None
    with _format_errors():
        echo(render_ps(service.store, ctrs, quiet=quiet, no_trunc=no_trunc,
                             fmt=fmt or "table", now=ctx.now, sizes=sizes), nl=False)


@main.command("diff")
@click.argument("container")
@pass_context
def diff_command(ctx: Context, container: str) -> None:
    """List the changed files of a container's filesystem, as `docker diff`."""
    from .render.containers import render_changes
    try:
        changes = ctx.service.container_changes(container)
    except DaemonError as exc:
        daemon_error(exc)
    echo(render_changes(changes), nl=False)


@main.command("export")
@click.option("-o", "--output", metavar="FILE", help="Write to a file, instead of STDOUT")
@click.option("--type-bits", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True, help="File type bits in tar modes, as dockerd before 23.0 "
              "wrote them (auto: when the root shows no newer daemon ran on it)")
@click.argument("name", metavar="CONTAINER|IMAGE")
@pass_context
def export_command(ctx: Context, output: str | None, type_bits: str, name: str) -> None:
    """Archive a container's filesystem, or a new container's of an image, as
    `docker export` does: to the analyst's side, never into the evidence."""
    import tarfile
    from .sources.exporttar import write_export
    service = ctx.service
    if output is not None and service.inside_evidence(output):
        _refuse_inside_evidence(output)
    if output is None and sys.stdout.isatty():
        echo("cowardly refusing to save to a terminal. Use the -o flag or redirect", err=True)
        sys.exit(1)
    try:
        root, entries = service.root_filesystem(name)
    except DaemonError as exc:
        daemon_error(exc)
    try:
        out = open(output, "wb") if output is not None else None
    except OSError as exc:
        _analyst_error(output, exc.strerror or str(exc))
    with out or contextlib.nullcontext(sys.stdout.buffer) as stream, \
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        problems = write_export(root, entries, tar, type_bits=service.tar_type_bits
                                if type_bits == "auto" else type_bits == "on")
    for problem in problems:
        warn(str(problem))


@main.command("cp")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-a", "--archive", "--preserve", "preserve", is_flag=True,
              help="Keep owners and set-user-ID/set-group-ID bits (default: strip them)")
@click.argument("source", metavar="CONTAINER|IMAGE:SRC_PATH")
@click.argument("dest", metavar="DEST_PATH")
@pass_context
def cp_command(ctx: Context, follow_link: bool, preserve: bool, source: str,
               dest: str) -> None:
    """Copy files out of a container or image, as `docker cp`, to the analyst's side:
    only below DEST_PATH, no device nodes, set-ID bits stripped unless --preserve."""
    from .safeopen import Beneath
    from .sources.extract import extract
    # An image's tag has a colon too: an absolute path's ":/" ends the name.
    cut = source.find(":/")
    name, sep, path = (source[:cut], ":", source[cut + 1:]) if cut > 0 else \
        source.partition(":")
    if not sep or not name or not path:
        _analyst_error(source, "name the source as CONTAINER:PATH or IMAGE:PATH")
    service = ctx.service
    if service.inside_evidence(dest):
        _refuse_inside_evidence(dest)
    try:
        root, src, entries = service.copy_source(name, path, follow_link)
    except DaemonError as exc:
        daemon_error(exc)
    base, top = _cp_destination(dest, src, path.endswith("/.") or src == "/")
    try:
        base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _analyst_error(base, exc.strerror or str(exc))
    try:
        planned = [(f"{top}{suffix}".lstrip("/"), entry) for suffix, entry in entries]
        problems = extract(root, [(out, e) for out, e in planned if out],
                           Beneath(base_fd), preserve)
    except OSError as exc:
        _analyst_error(exc.filename or base, exc.strerror or str(exc))
    finally:
        os.close(base_fd)
    for problem in problems:
        warn(str(problem))


def _cp_destination(dest: str, src: str, contents: bool) -> tuple[str, str]:
    """docker cp's naming: into an existing directory (its contents only for a source
    ending in "/."), else as a new name in an existing parent. Nothing is overwritten."""
    if os.path.isdir(dest):
        return dest, "" if contents else src.rpartition("/")[2]
    if os.path.lexists(dest):
        _analyst_error(dest, "exists; not overwritten")
    if dest.endswith("/"):
        _analyst_error(dest, "destination directory does not exist")
    head, _, tail = dest.rstrip("/").rpartition("/")
    return head or ("/" if dest.startswith("/") else "."), tail


def _analyst_error(path: str, reason: str) -> NoReturn:
    echo(f"analyze: error: {path}: {reason}", err=True)
    sys.exit(2)


def _refuse_inside_evidence(path: str) -> NoReturn:
    _analyst_error(path, "inside the evidence; write the analyst's files elsewhere")


@main.command("owner")
@click.option("--json", "as_json", is_flag=True, help="One JSON document")
@click.argument("target", metavar="PATH|ID")
@pass_context
def owner_command(ctx: Context, as_json: bool, target: str) -> None:
    """The layers, images and containers a path under the data root or an ID belongs
    to; exit 1 when nothing in the evidence is theirs."""
    from .render.owner import owner_body, render_owner
    service = ctx.service
    found = service.owners(target)
    body = owner_body(service.store, target, found)
    if service.store.driver == "devicemapper":
        warn(f"{target}: files inside devicemapper thin devices are not read: a path in "
             "one is named by its device only")
    if as_json:
        from .render.analysis import document
        echo(document(analysis(ctx, service.source.kind), body, service.diagnostics),
             nl=False)
    else:
        echo(render_owner(body), nl=False)
    if not found:
        sys.exit(1)


@main.command("report")
@click.option("-o", "--output", metavar="FILE", required=True,
              help="Where the report goes (never inside the evidence)")
@click.option("--no-verify", is_flag=True, help="Leave out verify (it reads every layer file)")
@click.option("-j", "--jobs", type=int, default=None, help="Layers verified in parallel")
@pass_context
def report_command(ctx: Context, output: str, no_verify: bool, jobs: int | None) -> None:
    """One JSON document of a whole analysis for a case file (inventory, verify, du,
    timeline); prints the report's sha256."""
    import hashlib
    from .errors import UnsupportedLayoutError
    from .render.analysis import document
    from .render.report import report_body
    from .render.verify import verify_json
    service = ctx.service
    if service.inside_evidence(output):
        _refuse_inside_evidence(output)
    store = service.store
    found = list(store.diagnostics)
    verified = None
    if not no_verify:
        try:
            result = service.verify(None, jobs)
        except UnsupportedLayoutError as exc:
            warn(f"verify left out of the report: {exc}")
        else:
            verified, found = verify_json(result), found + list(result.found)
    usage = None
    if not service.is_image_archive:
        from .render.du import du_json
        measured, unread = service.root_usage(ctx.now)
        usage = du_json(measured, {name: root.path for name, root in service.roots.items()})
        found += unread
    text = document(analysis(ctx, service.source.kind),
                    report_body(store, verified, usage, service.timeline()), found)
    data = text.encode("utf-8", "surrogateescape")
    try:
        with open(output, "xb") as out:
            out.write(data)
    except OSError as exc:
        _analyst_error(output, exc.strerror or str(exc))
    echo(f"sha256:{hashlib.sha256(data).hexdigest()}  {output}")


@main.command("timeline")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines with Timesketch's fields (message, datetime, timestamp_desc)")
@pass_context
def timeline_command(ctx: Context, as_json: bool) -> None:
    """Every dated event the evidence holds, oldest first."""
    from .render.timeline import render_timeline, render_timeline_json
    events = ctx.service.timeline()
    echo((render_timeline_json if as_json else render_timeline)(events), nl=False)


@main.command("history")
@click.option("-H", "--human", type=bool, default=True, show_default=True,
              help="Print sizes and dates in human readable format")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--format", "fmt", default="table", metavar="FORMAT",
              help="'table', 'table TEMPLATE', 'json', or a Go template, as Docker's")
@click.argument("image")
@pass_context
def history_command(ctx: Context, human: bool, no_trunc: bool, quiet: bool, fmt: str,
                    image: str) -> None:
    """Show the history of an image, as `docker image history`."""
    from .render.history import render_history
    try:
        items = ctx.service.history(image)
    except DaemonError as exc:
        daemon_error(exc)
    with _format_errors():
        echo(render_history(items, human=human, no_trunc=no_trunc, quiet=quiet,
                                  now=ctx.now, fmt=fmt or "table"), nl=False)


@main.command("inspect")
@click.option("-f", "--format", "fmt", default="", metavar="FORMAT",
              help="'json' or a Go template, as Docker's")
@click.argument("images", nargs=-1, required=True)
@pass_context
def inspect_command(ctx: Context, fmt: str, images: tuple[str, ...]) -> None:
    """Show an image as `docker image inspect` does, plus its layers and containers."""
    from .render.inspect import inspect_image
    service = ctx.service
    objects: list = []      # each image's object, or the error that stands for it
    for name in images:
        if service.containerd is not None:
            from .render.containerdinspect import inspect_image as inspect_containerd
            try:
                objects.append(inspect_containerd(*service.containerd.inspect(name)))
            except DaemonError as exc:
                objects.append(exc)         # API 1.50: the daemon's words, unwrapped
            continue
        try:
            img = service.image(name)
        except NotFound as exc:
            # dockerd 20.10's LookupImage wraps the lookup's error with the name asked
            # for; later ones (28.5) answer the lookup's own words.
            from .engines.daemonapi import at_least
            objects.append(exc if at_least(service.api_version, "1.42") else
                           DaemonError(f"no such image: {name}: {exc}"))
            continue
        except DaemonError as exc:
            objects.append(exc)
            continue
        # Measured only when it will be shown: it walks the layers.
        allocated = service.layer_allocated(img) \
            if fmt in ("", "json") or "Analyzer" in fmt else None
        objects.append(inspect_image(service.store, img, service.driver_metadata(img),
                                     allocated, service.api_version))
    found = [o for o in objects if not isinstance(o, Exception)]
    errors = [f"Error response from daemon: {o}" for o in objects if isinstance(o, Exception)]
    if fmt in ("", "json"):
        from .goapi.json import encode_unescaped, marshal_indent
        if not found:
            out = "[]"
        else:
            out = encode_unescaped(found) if fmt == "json" else marshal_indent(found)
        out += "\n"
        code = 1 if errors else 0
    else:
        from .render.inspect_format import inspect_format
        out, errors, code = inspect_format(
            fmt, [DaemonError(f"Error response from daemon: {o}") if isinstance(o, Exception)
                  else o for o in objects])
    echo(out, nl=False)
    if errors:
        echo("\n".join(errors), err=True)
    sys.exit(code)


@main.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@pass_context
def df_command(ctx: Context, verbose: bool) -> None:
    """Show disk usage, as `docker system df`."""
    from .render.df import render_summary, render_verbose
    du = ctx.service.disk_usage(ctx.now)
    text = (render_verbose(ctx.service.store_with_build_cache, du, ctx.now) if verbose
            else render_summary(du))
    echo(text, nl=False)


@main.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.argument("images", nargs=-1, required=True)
@pass_context
def rm_command(ctx: Context, force: bool, no_prune: bool, images: tuple[str, ...]) -> None:
    """Print what `docker image rm` would print; changes nothing."""
    from .render.rm import format_rm, format_rmi_v1
    plan = ctx.service.image_delete(images, force=force, prune=not no_prune)
    out, err, code = (format_rmi_v1(plan) if ctx.service.is_pre_1_10
                      else format_rm(plan, force))
    echo(out, nl=False)
    echo(err, nl=False, err=True)
    sys.exit(code)


@main.command("reclaim")
@click.option("-f", "--force", is_flag=True, help="As `docker image rm -f`")
@click.option("--no-prune", is_flag=True, help="As `docker image rm --no-prune`")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (fields in DESIGN.md)")
@click.option("--blkdiscard", type=click.Choice(["on", "off"]),
              help="devicemapper: the daemon's dm.blkdiscard (default: from --daemon-config, else on)")
@click.option("--daemon-config", type=click.Path(exists=True, dir_okay=False),
              help="devicemapper: the host's daemon.json, for its storage options")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False),
              help="devicemapper: pool metadata to read instead of the loop file")
@click.argument("images", nargs=-1, required=True)
@pass_context
def reclaim_command(ctx: Context, force: bool, no_prune: bool, as_json: bool,
                    blkdiscard: str | None, daemon_config: str | None,
                    metadata_file: str | None, images: tuple[str, ...]) -> None:
    """The exact layers and bytes `docker image rm` would free, and what holds the rest."""
    from .render.reclaim import last_used_json, reclaim_json, render_reclaim
    from .render.rm import exit_status
    service = ctx.service
    if service.is_image_archive:
        _archive_reclaim(ctx, images, as_json)
    plan = service.image_delete(images, force=force, prune=not no_prune)
    result, pool = service.reclaim(plan, None if blkdiscard is None else blkdiscard == "on",
                                   _analyst_bytes(daemon_config),
                                   _analyst_fd(metadata_file), ctx.now)
    if service.containerd is not None:
        from .render import containerdreclaim
        if as_json:
            from .render.analysis import document
            echo(document(analysis(ctx, "containerd"),
                          containerdreclaim.reclaim_json(result, last_used_json(
                              service.last_used, result.deleted_images)),
                          service.containerd.diagnostics), nl=False)
        else:
            echo(containerdreclaim.render_reclaim(result), nl=False)
            for message in result.errors:
                echo(f"Error response from daemon: {message}", err=True)
        sys.exit(exit_status(plan, force))
    store = service.store_with_build_cache
    if as_json:
        from .render.analysis import document
        echo(document(analysis(ctx, store.driver), reclaim_json(result, {
            **(pool or {}), **last_used_json(service.last_used, result.deleted_images)}),
            service.diagnostics), nl=False)
    else:
        echo(render_reclaim(store, result, pool), nl=False)
        for message in result.errors:
            echo(f"Error response from daemon: {message}", err=True)
    sys.exit(exit_status(plan, force))


def _archive_reclaim(ctx: Context, images: tuple[str, ...], as_json: bool) -> NoReturn:
    """reclaim on an image archive: the blobs removing these names leaves unreferenced."""
    from .render.reclaim import archive_reclaim_json, render_archive_reclaim
    service = ctx.service
    result, errors = service.archive_reclaim(images)
    if as_json:
        from .render.analysis import document
        store = service.store
        echo(document(analysis(ctx, store.driver), archive_reclaim_json(result, errors),
                            store.diagnostics), nl=False)
    else:
        echo(render_archive_reclaim(result), nl=False)
        for message in errors:
            echo(f"Error response from daemon: {message}", err=True)
    sys.exit(1 if errors else 0)


def _prune_options(filter_example: str, json_help: str) -> Callable:
    """--filter, -f and --json, as every prune takes them."""
    options = (click.option("--filter", "filters", multiple=True,
                            help=f"Provide filter values (e.g. '{filter_example}')"),
               click.option("-f", "--force", is_flag=True,
                            help="Accepted, as Docker's; nothing is ever removed"),
               click.option("--json", "as_json", is_flag=True, help=json_help))

    def wrap(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command
    return wrap


@main.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images, not just dangling ones")
@_prune_options("until=<timestamp>", "The same fields as `reclaim --json`")
@pass_context
def prune_command(ctx: Context, all_images: bool, filters: tuple[str, ...], force: bool,
                  as_json: bool) -> None:
    """Dry run of `docker image prune`: its output, and the bytes it would really free."""
    from .render.prune import format_prune
    pairs = _prune_filters(filters, "prune")
    service = ctx.service
    try:
        plan, records, space = service.image_prune(all_images, pairs, ctx.now)
    except DaemonError as exc:
        daemon_error(exc)
    if as_json and service.containerd is not None:
        from .render.analysis import document
        from .render.containerdreclaim import reclaim_json as containerd_json
        from .render.reclaim import last_used_json
        result = service.containerd.price_prune(plan)
        body = containerd_json(result, {"space_reclaimed": space, **last_used_json(
            service.last_used, result.deleted_images)})
        echo(document(analysis(ctx, "containerd"), body, service.containerd.diagnostics),
                   nl=False)
        return
    if as_json:
        from .render.analysis import document
        from .render.reclaim import last_used_json, reclaim_json
        result = service.price(plan)
        body = reclaim_json(result, {"space_reclaimed": space, **last_used_json(
            service.last_used, result.deleted_images)})
        store = service.store_with_build_cache
        echo(document(analysis(ctx, store.driver), body, service.diagnostics), nl=False)
        return
    echo(format_prune(records, space), nl=False)


def _prune_filters(filters: tuple[str, ...], command: str) -> list[tuple[str, str]]:
    """--filter values as the (key, value) pairs the CLI sends."""
    return [(k, v) for k, vs in _filters(filters, "--filter", command).items() for v in vs]


def _freed_json(service: ImageService, freed: int,
                collected: ContainerdReclaim | None) -> dict:
    """A prune's bytes, and on the containerd store the blobs and snapshots the
    collection after it deletes."""
    if service.containerd is None:
        return {"bytes_freed": freed}
    from .render.containerdreclaim import deletions_json
    return {"bytes_freed": freed, **deletions_json(collected)}


def _prune_json(ctx: Context, body: dict) -> None:
    """A prune's --json: its own fields, the bytes, provenance and damage."""
    from .render.analysis import document
    service = ctx.service
    body["bytes_are_estimate"] = service.root.usage_is_estimate
    echo(document(analysis(ctx, service.store.driver), body, service.diagnostics), nl=False)


@main.group("container")
def container_group() -> None:
    """Container commands, as `docker container`: dry runs only."""


@container_group.command("prune")
@_prune_options("until=<timestamp>", "The containers, Docker's figure and the bytes freed")
@pass_context
def container_prune_command(ctx: Context, filters: tuple[str, ...], force: bool,
                            as_json: bool) -> None:
    """Dry run of `docker container prune`: its output, and the bytes it would really free."""
    from .render.prune import deleted_block, total
    service = ctx.service
    try:
        result = service.container_prune(_prune_filters(filters, "container prune"), ctx.now)
    except DaemonError as exc:
        daemon_error(exc)
    if as_json:
        _prune_json(ctx, {"deleted_containers": [c.id for c in result.deleted],
                          "space_reclaimed": result.space_reclaimed,
                          "released_layers": list(result.released_layers),
                          **_freed_json(service, *service.prune_freed(
                              ctx.now, result.deleted, chain_ids=result.released_layers))})
        return
    echo(deleted_block("Containers", [c.id for c in result.deleted])
         + total(result.space_reclaimed), nl=False)


@main.group("volume")
def volume_group() -> None:
    """Volume commands, as `docker volume`: dry runs only."""


@volume_group.command("prune")
@click.option("-a", "--all", "all_volumes", is_flag=True,
              help="Remove all unused volumes, not just anonymous ones (API 1.42+)")
@_prune_options("label=<label>", "The volumes, Docker's figure and the bytes freed")
@pass_context
def volume_prune_command(ctx: Context, all_volumes: bool, filters: tuple[str, ...],
                         force: bool, as_json: bool) -> None:
    """Dry run of `docker volume prune`: every unused local volume as dockerd 20.10
    answers it; only anonymous ones (all with -a) on a root Docker 23+ wrote."""
    from .engines.daemonapi import at_least
    from .render.prune import deleted_block, total
    pairs = _prune_filters(filters, "volume prune")
    service = ctx.service
    if all_volumes:
        # The Docker 28 CLI: the flag's API version against the daemon's, then all=true.
        if not at_least(service.api_version, "1.42"):
            echo(f'"--all" requires API version 1.42, but the Docker daemon API version '
                 f"is {service.api_version}", err=True)
            sys.exit(1)
        if any(k == "all" for k, _ in pairs):
            echo("conflicting options: cannot specify both --all and --filter all=1",
                 err=True)
            sys.exit(1)
        pairs.append(("all", "true"))
    try:
        result = service.volume_prune(pairs)
    except DaemonError as exc:
        daemon_error(exc)
    if as_json:
        _prune_json(ctx, {"deleted_volumes": [v.name for v in result.deleted],
                          "space_reclaimed": result.space_reclaimed,
                          "bytes_freed": service.removed_bytes(volumes=result.deleted)})
        return
    echo(deleted_block("Volumes", [v.name for v in result.deleted])
         + total(result.space_reclaimed), nl=False)


@main.group("builder")
def builder_group() -> None:
    """Builder commands, as `docker builder`: dry runs only."""


# The request's caps on what the cache keeps: the Docker CLI's --keep-storage, and the
# API 1.48 parameters buildx spells as flags (Docker 28.5 takes --keep-storage as
# reserved-space's old name).
_SPACE_CAPS = ("keep-storage", "reserved-space", "max-used-space")


@builder_group.command("prune")
@click.option("-a", "--all", "all_records", is_flag=True,
              help="Remove all unused build cache, not just dangling ones")
@click.option("--keep-storage", metavar="BYTES", help="Amount of disk space to keep for cache")
@click.option("--reserved-space", metavar="BYTES",
              help="Amount of disk space always allowed to keep for cache (API 1.48+)")
@click.option("--max-used-space", metavar="BYTES",
              help="Maximum amount of disk space allowed to keep for cache (API 1.48+)")
@_prune_options("until=24h", "The build cache records, Docker's figure and the bytes freed")
@pass_context
def builder_prune_command(ctx: Context, all_records: bool, keep_storage: str | None,
                          reserved_space: str | None, max_used_space: str | None,
                          filters: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Dry run of `docker builder prune`: the BuildKit cache records it removes, and
    the bytes it would really free."""
    from .engines.builderprune import SpaceCaps
    from .goapi.units import ram_in_bytes
    from .render.prune import BUILDX_MISSING_WARNING, deleted_block, total
    echo(BUILDX_MISSING_WARNING, err=True, nl=False)
    sizes = {}
    for flag, value in zip(_SPACE_CAPS, (keep_storage, reserved_space, max_used_space)):
        try:
            sizes[flag.replace("-", "_")] = 0 if value is None else ram_in_bytes(value)
        except ValueError as exc:
            # cobra's flag error (docker builder prune has no "See ... --help" line).
            echo(f'invalid argument "{value}" for "--{flag}" flag: {exc}\n\n'
                 "Usage:  analyze builder prune\n\n"
                 "Run 'analyze builder prune --help' for more information", err=True)
            sys.exit(125)
    pairs = _prune_filters(filters, "builder prune")
    service = ctx.service
    try:
        result = service.builder_prune(all_records, pairs, ctx.now, SpaceCaps(**sizes))
    except DaemonError as exc:
        daemon_error(exc)
    if as_json:
        _prune_json(ctx, {"deleted_build_cache": [r.id for r in result.deleted],
                          "space_reclaimed": result.space_reclaimed,
                          "released_layers": list(result.released_layers),
                          **_freed_json(service, *service.prune_freed(
                              ctx.now, chain_ids=result.released_layers,
                              graph_ids=result.removed_dirs, build_cache=result.deleted))})
        return
    echo(deleted_block("build cache objects", [r.id for r in result.deleted])
         + total(result.space_reclaimed), nl=False)


@main.group("network")
def network_group() -> None:
    """Network commands, as `docker network`: dry runs only."""


@network_group.command("prune")
@_prune_options("until=<timestamp>", "The networks, and the bytes freed (none)")
@pass_context
def network_prune_command(ctx: Context, filters: tuple[str, ...], force: bool,
                          as_json: bool) -> None:
    """Dry run of `docker network prune`: the unused local networks it removes."""
    from .render.prune import deleted_block
    try:
        gone = ctx.service.network_prune(_prune_filters(filters, "network prune"), ctx.now)
    except DaemonError as exc:
        daemon_error(exc)
    if as_json:
        # A network is a key of local-kv.db, whose pages bbolt keeps: nothing on disk goes.
        _prune_json(ctx, {"deleted_networks": [n.name for n in gone], "bytes_freed": 0})
        return
    echo(deleted_block("Networks", [n.name for n in gone]), nl=False)


@main.group("system")
def system_group() -> None:
    """System commands, as `docker system`: dry runs only."""


@system_group.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images not just dangling ones")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@_prune_options("label=<key>=<value>",
                "What each pruner removes, Docker's figure and the bytes freed")
@pass_context
def system_prune_command(ctx: Context, all_images: bool, volumes: bool,
                         filters: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Dry run of `docker system prune`: containers, networks, volumes (--volumes),
    images and build cache, each pruner seeing what the ones before removed."""
    from .render.prune import deleted_block, image_lines, total
    pairs = _prune_filters(filters, "system prune")
    if volumes and any(k == "until" for k, _ in pairs):
        echo('ERROR: The "until" filter is not supported with "--volumes"', err=True)
        sys.exit(1)
    service = ctx.service
    result = service.system_prune(all_images, volumes, pairs, ctx.now)
    if as_json:
        if result.error is not None:
            daemon_error(result.error)
        _prune_json(ctx, _system_prune_body(service, result, ctx.now))
        return
    out = ""
    if result.containers:
        out += deleted_block("Containers", [c.id for c in result.containers.deleted])
    out += deleted_block("Networks", [n.name for n in result.networks or ()])
    if result.volumes:
        out += deleted_block("Volumes", [v.name for v in result.volumes.deleted])
    if result.images:
        out += deleted_block("Images", image_lines(result.images[1]))
    if result.build_cache:
        out += deleted_block("build cache objects", [r.id for r in result.build_cache.deleted])
    echo(out, nl=False)
    if result.error is not None:
        daemon_error(result.error)
    echo(total(result.space_reclaimed), nl=False)


def _system_prune_body(service: ImageService, result: SystemPrune, now: float) -> dict:
    """system prune --json: each pruner's removals, then the images' as prune --json has
    them, with each removed image's last use as the evidence held it before the prune
    (a pruned container's times are still evidence of use); ``bytes_freed`` counts
    everything (on the containerd store one collection frees what every pruner's
    deletions leave unreferenced)."""
    from .render.reclaim import last_used_json
    assert result.containers is not None and result.images is not None
    assert result.build_cache is not None
    containers, cache = result.containers.deleted, result.build_cache
    vols = result.volumes.deleted if result.volumes else ()
    released = result.containers.released_layers + cache.released_layers
    if service.containerd is not None:
        from .render.containerdreclaim import reclaim_json as containerd_json
        plan = result.images[0]
        priced = service.containerd.price_prune(plan)
        images = containerd_json(priced)
        images.update(_freed_json(service, *service.prune_freed(
            now, containers, vols, released, cache.removed_dirs, build_cache=cache.deleted,
            images=plan)))
        freed = images["bytes_freed"]
    else:
        from .render.reclaim import reclaim_json
        priced = service.price(result.images[0])
        images = reclaim_json(priced)
        freed = images["bytes_freed"] + service.removed_bytes(containers, vols, released,
                                                              cache.removed_dirs)
    images.update(last_used_json(service.last_used, priced.deleted_images))
    return {"deleted_containers": [c.id for c in containers],
            "deleted_networks": [n.name for n in result.networks or ()],
            "deleted_volumes": [v.name for v in vols],
            "deleted_build_cache": [r.id for r in cache.deleted],
            "released_layers": list(released),
            **images, "bytes_freed": freed, "space_reclaimed": result.space_reclaimed}


def _analyst_bytes(path: str | None) -> AnalystFile | None:
    """A file the analyst named (a copy of the host's daemon.json): read here, at the
    edge, because it is not evidence under the data root."""
    if path is None:
        return None
    with open(path, "rb") as f:
        return AnalystFile(path, f.read())


def _analyst_fd(path: str | None) -> AnalystFile | None:
    """A file the analyst named (a copy of a pool's metadata device): opened here, at the
    edge; its reader closes it."""
    if path is None:
        return None
    return AnalystFile(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))


@main.command("du")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (fields in DESIGN.md)")
@click.option("-v", "--verbose", is_flag=True, help="List the biggest items of each category")
@pass_context
def du_command(ctx: Context, as_json: bool, verbose: bool) -> None:
    """Every byte and inode under the data root, by owner; orphans named."""
    from .render.du import du_json, render_du
    usage, warnings = ctx.service.root_usage(ctx.now)
    if as_json:
        from .render.analysis import document
        paths = {name: root.path for name, root in ctx.service.roots.items()}
        kind = "containerd" if ctx.service.containerd is not None else ctx.service.store.driver
        echo(document(analysis(ctx, kind), du_json(usage, paths), warnings), nl=False)
    else:
        echo(render_du(usage, verbose), nl=False)


@main.command("slack")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (fields in DESIGN.md)")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False),
              help="Pool metadata to read instead of the loop file (a copy of a direct-lvm "
                   "metadata device)")
@pass_context
def slack_command(ctx: Context, as_json: bool, metadata_file: str | None) -> None:
    """devicemapper pool: apparent, allocated, mapped and slack bytes."""
    from .render.slack import render_slack
    report, warnings = ctx.service.slack(_analyst_fd(metadata_file))
    if as_json:
        from .render.analysis import document
        from .render.slack import slack_json
        echo(document(analysis(ctx, "devicemapper"), slack_json(report), warnings),
                   nl=False)
    else:
        echo(render_slack(report), nl=False)


@main.command("verify")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Layers verified at once (default: CPUs)")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (fields in DESIGN.md)")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only what failed")
@click.argument("images", nargs=-1)
@pass_context
def verify_command(ctx: Context, jobs: int | None, as_json: bool, quiet: bool,
                   images: tuple[str, ...]) -> None:
    """Check image IDs, diff IDs (via tar-split) and every file of the layers, offline."""
    from .render.verify import ProgressBar, render_report, verify_json
    service = ctx.service
    try:
        ids = [service.image(name).id for name in images] if images else None
    except DaemonError as exc:
        daemon_error(exc)
    bar = None
    if not quiet and sys.stderr.isatty():
        bar = ProgressBar(service.verify_bytes(ids), sys.stderr)
    try:
        report = service.verify(ids, jobs, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        from .render.analysis import document
        store = service.read_store
        echo(document(analysis(ctx, store.driver), verify_json(report),
                            (*store.diagnostics, *report.found)), nl=False)
    else:
        echo(render_report(report, quiet), nl=False)
    sys.exit(0 if report.ok else 1)


def run(entry: Callable[..., object] = main) -> None:
    # A command builds its model once and keeps it to the end: tens of thousands of
    # dicts and records that no cycle frees, which the collector's default thresholds
    # walk again and again (7% of ls's CPU at 10,000 images). Garbage cycles are rare
    # here: collect them seldom, not never.
    gc.set_threshold(50_000, 20, 100)
    try:
        _run(entry)
    finally:
        _TERMINAL.finish()


def _run(entry: Callable[..., object]) -> None:
    try:
        entry(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except DaemonError as exc:
        daemon_error(exc)
    except AnalyzerError as exc:
        echo(f"analyze: error: {exc}", err=True)
        sys.exit(exc.exit_code)
