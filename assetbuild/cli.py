"""Command-line interface: a thin layer over manifest, build and export.

Only click and the standard library are imported here at start-up; each command imports
what it needs, so `assetbuild --help` starts fast.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import __version__
from .errors import AssetbuildError, BackendUnavailable, Problem, UsageError, did_you_mean, first_line

if TYPE_CHECKING:
    from .manifest.model import Manifest
    from .pipeline.cache import Cache
    from .pipeline.remote import Remote, RemoteSpec

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MANIFEST = "assetbuild.toml"
manifest_arg = click.argument("manifest", default=DEFAULT_MANIFEST, type=click.Path(dir_okay=False))
cache_opt = click.option("--cache-dir", type=click.Path(file_okay=False), envvar="ASSETBUILD_CACHE",
                         help="Cache folder (default .assetbuild/cache beside the manifest; env ASSETBUILD_CACHE).")


class _Group(click.Group):
    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        # Every command's errors end here: one line per problem, the error's exit code.
        try:
            return super().invoke(ctx)
        except AssetbuildError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assetbuild")
def main() -> None:
    """Build game audio assets from a TOML manifest.

    Generates each dialogue line, ambience bed, music theme and sound effect with a backend,
    masters it to its loudness target and writes engine-ready files plus assetpack.json.
    Only what changed is rebuilt.
    """


def _fail(exc: AssetbuildError) -> NoReturn:
    lines = exc.lines()
    for line in lines:
        click.echo(f"error: {line}", err=True)
    if len(lines) > 1:
        click.echo(f"{len(lines)} problems; nothing was built.", err=True)
    sys.exit(exc.exit_code)


profile_opt = click.option("--profile", metavar="NAME",
                           help="Build the [profiles.NAME] variant: its own output tree, from the same "
                                "generated audio.")


def _set_env(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    # Through the environment, so worker processes and every backend see the same choice.
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:
            os.environ[name] = "1" if value is True else value
    return callback


def remote_opts(f: F) -> F:
    """The remote cache options (docs/scale.md)."""
    f = click.option("--require-remote", is_flag=True,
                     help="Fail (exit 2) when the remote cache cannot be reached, instead of building locally.")(f)
    f = click.option("--remote-write", is_flag=True, envvar="ASSETBUILD_REMOTE_WRITE",
                     help="Upload what this machine builds to the remote cache (CI; default: read only; "
                          "env ASSETBUILD_REMOTE_WRITE=1).")(f)
    f = click.option("--no-remote", is_flag=True, help="Ignore the remote cache.")(f)
    return click.option("--remote-cache", "remote_url", metavar="URL", envvar="ASSETBUILD_REMOTE_CACHE",
                        help="A remote cache the team shares (s3://bucket/prefix, file:///shared/dir, ...; "
                             "env ASSETBUILD_REMOTE_CACHE; default: [cache] remote).")(f)


def _remote(m: Manifest, remote_url: str | None, no_remote: bool, remote_write: bool,
            require_remote: bool) -> RemoteSpec | None:
    from .pipeline.remote import resolve

    return resolve(m, remote_url, no_remote, remote_write, require_remote)


def _cluster(m: Manifest, executor: str | None, ray_address: str | None) -> str | None:
    """None to run here; "local" for a Ray of this build's own; else a Ray cluster's address."""
    kind = executor or m.executor
    if kind != "ray":
        if ray_address:
            raise UsageError("--ray-address needs --executor ray (or [build] executor = \"ray\")")
        return None
    return ray_address or m.ray_address or "local"


def model_opts(f: F) -> F:
    """--device and --allow-download, for the commands that run neural backends."""
    f = click.option("--allow-download", is_flag=True, expose_value=False,
                     callback=_set_env("ASSETBUILD_ALLOW_DOWNLOAD"),
                     help="Download missing model weights (default: never; see `assetbuild models`).")(f)
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), expose_value=False,
                        callback=_set_env("ASSETBUILD_DEVICE"), envvar="ASSETBUILD_DEVICE",
                        help="Where neural models run (default auto: CUDA, then MPS, then CPU).")(f)


def _load(manifest: str, quiet: bool = False, profile: str | None = None) -> Manifest:
    from .manifest import load

    m = load(manifest, profile=profile)
    if not quiet:
        for w in m.warnings:
            click.echo(f"warning: {w}", err=True)
    return m


@main.command()
@manifest_arg
@click.option("--locked", is_flag=True,
              help="Fail (exit 1), building nothing, unless the lockfile already describes this build "
                   "(no asset added, removed or changed since it was written).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--copy", is_flag=True, help="Copy outputs instead of hardlinking them from the cache.")
@click.option("--commercial", is_flag=True,
              help="Fail (exit 2), naming the entries, if any asset would come from a model whose licence "
                   "does not allow commercial use.")
@click.option("--max-characters", type=click.IntRange(min=0), metavar="N",
              help="Fail (exit 2) if the build would send more than N characters to a paid service.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where the jobs run: this machine (local), or a Ray cluster (ray; extra [ray]). "
                   "Default: [build] executor, else local.")
@click.option("--ray-address", metavar="ADDRESS",
              help="With --executor ray: the cluster (auto, ray://host:10001, host:6379). Default: [build] "
                   "ray_address, else a Ray started here for this build.")
@model_opts
@remote_opts
@profile_opt
@cache_opt
def build(manifest: str, locked: bool, as_json: bool, quiet: bool, jobs: int | None, copy: bool, commercial: bool,
          max_characters: int | None, executor: str | None, ray_address: str | None, remote_url: str | None,
          no_remote: bool, remote_write: bool, require_remote: bool, profile: str | None,
          cache_dir: str | None) -> None:
    """Generate, master and export every asset in MANIFEST that changed."""
    from .pipeline.run import Options
    from .pipeline.run import build as run_build
    from .progress import Reporter

    m = _load(manifest, quiet=quiet, profile=profile)
    reporter = Reporter(quiet=quiet or as_json, stream=sys.stderr, warnings=not quiet)
    options = Options(cache_dir=Path(cache_dir) if cache_dir else None, jobs=jobs or 0, copy=copy, locked=locked,
                      commercial=commercial, max_characters=max_characters,
                      remote=_remote(m, remote_url, no_remote, remote_write, require_remote),
                      cluster=_cluster(m, executor, ray_address))
    try:
        # stdout is for the result (--json) alone: what a library prints meanwhile (Ray's worker
        # notices) goes to stderr with the progress.
        with reporter, contextlib.redirect_stdout(sys.stderr):
            result = run_build(m, options, reporter.event)
    except KeyboardInterrupt:
        click.echo("interrupted; finished work is cached and will be reused", err=True)
        sys.exit(130)
    if result.locked_mismatch:
        if as_json:
            click.echo(json.dumps({"locked": False, "mismatch": result.locked_mismatch}))
        else:
            lock = f"assetbuild.{profile}.lock" if profile else "assetbuild.lock"
            click.echo(f"error: --locked: {len(result.locked_mismatch)} assets differ from {lock}:", err=True)
            for item in result.locked_mismatch:
                click.echo(f"  {item['id']}: would {item['action']} ({', '.join(item['reasons']) or 'keys changed'})",
                           err=True)
        sys.exit(1)
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet or summary["failed"]:
        reporter.summary(summary)
    sys.exit(1 if summary["failed"] else 0)


@main.command()
@manifest_arg
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@model_opts
@remote_opts
@profile_opt
@cache_opt
def plan(manifest: str, as_json: bool, remote_url: str | None, no_remote: bool, remote_write: bool,
         require_remote: bool, profile: str | None, cache_dir: str | None) -> None:
    """Show what a build would generate, fetch or re-process, and why."""
    from .pipeline.outcome import Action
    from .pipeline.remote import Remote
    from .pipeline.run import plan_build

    m = _load(manifest, profile=profile)
    spec = _remote(m, remote_url, no_remote, remote_write, require_remote)
    remote = Remote(spec, warn=lambda message: click.echo(f"warning: {message}", err=True)) if spec else None
    try:
        p = plan_build(m, Path(cache_dir) if cache_dir else None, remote)
        totals = p.totals()
        fetching = [i.process_key for i in p.with_action(Action.FETCH)]
        totals["fetch_bytes"] = remote.sizes(fetching) if remote is not None and fetching else 0
    finally:
        if remote is not None:
            remote.close()
    if as_json:
        items = [{"id": i.id, "kind": i.asset.kind, "action": i.action.value, "reasons": i.reasons}
                 for i in p.items if i.action != Action.FRESH]
        click.echo(json.dumps({"totals": totals, "items": items, "remove": sorted(p.removed)}))
        return
    for i in p.items:
        if i.action != Action.FRESH:
            click.echo(f"{i.action:<9} {i.asset.kind}/{i.asset.id}: {', '.join(i.reasons)}")
    for aid in sorted(p.removed):
        click.echo(f"{'remove':<9} {p.removed[aid].get('file', aid)}: no longer in the manifest")
    click.echo(f"{totals['entries']} assets: {totals['generate']} to generate, {totals['process']} to re-process, "
               f"{totals['place']} to restore from cache, {totals['fresh']} up to date, {totals['remove']} to remove; "
               f"{totals['characters']} characters of speech, about {totals['seconds']:g} s of audio to generate")
    if totals["fetch"] or totals["fetch_generated"]:
        click.echo(f"from the remote cache: {totals['fetch']} to fetch ({totals['fetch_bytes'] / 1e6:.1f} MB)"
                   + (f", {totals['fetch_generated']} to process from fetched audio" if totals["fetch_generated"]
                      else "")
                   + f"; saves {totals['avoided_characters']} characters and about {totals['avoided_seconds']:g} s "
                     "of generation")
    if totals["billed_characters"]:
        click.echo(f"{totals['billed_characters']} characters will be billed by a paid service")


@main.command()
@manifest_arg
@profile_opt
def clean(manifest: str, profile: str | None) -> None:
    """Remove the built outputs (the cache is kept)."""
    from .export.metadata import PACK, REPORT
    from .manifest.model import ENGINES, SIDECARS, sidecar_file
    from .pipeline.lock import read_lock
    from .pipeline.state import paths_of

    m = _load(manifest, profile=profile)
    paths = paths_of(m)
    removed = 0
    mains = [a.get("file", "") for a in read_lock(paths.lock).values()]
    files = [*mains, *(sidecar_file(f, n) for f in mains if f for n in SIDECARS), PACK, REPORT]
    for rel in files:
        path = m.output_dir / rel
        if rel and path.is_file():
            path.unlink()
            removed += 1
    for engine in [*ENGINES, "sequences"]:  # engine exports and mixed sequences are outputs too
        folder = m.output_dir / engine
        if folder.is_dir():
            removed += sum(1 for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
    paths.state.unlink(missing_ok=True)
    for sub in sorted(m.output_dir.rglob("*"), reverse=True) if m.output_dir.exists() else []:
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    click.echo(f"removed {removed} files from {m.output_dir}")


@main.command()
@manifest_arg
@click.option("-e", "--engine", "engines", multiple=True, metavar="ENGINE",
              help="unreal, unity, wwise or fmod; repeat for several (default: [export] engines).")
@profile_opt
def export(manifest: str, engines: tuple[str, ...], profile: str | None) -> None:
    """Write engine import files into <output>/<engine>/ from the built assetpack.json."""
    from .export import engines as exports

    m = _load(manifest, profile=profile)
    for name in engines:
        if name not in exports.ENGINES:
            raise UsageError(f"unknown engine '{name}'" + did_you_mean(name, exports.ENGINES)
                             + f"; engines: {', '.join(exports.ENGINES)}")
    chosen = list(dict.fromkeys(engines)) or m.engines
    if not chosen:
        raise UsageError("no engine given: use --engine NAME, or set [export] engines in the manifest")
    pack = exports.load_pack(m.output_dir, m.prefixes)
    for name in chosen:
        written = exports.write(name, pack)
        click.echo(f"{name}: {len(written)} files in {m.output_dir / name}")


@main.command()
@manifest_arg
@click.option("-o", "--out", "dist", type=click.Path(file_okay=False), default=None,
              help="Folder for the zip (default: dist beside the manifest).")
@profile_opt
def pack(manifest: str, dist: str | None, profile: str | None) -> None:
    """Zip the built output tree into dist/<name>-<version>.zip with SHA256SUMS.

    The same tree gives a byte-identical zip. Fails (exit 1) when a file that assetpack.json
    lists is missing or changed: build first.
    """
    from .export import pack as packer

    m = _load(manifest, profile=profile)
    if not (m.output_dir / "assetpack.json").is_file():
        raise UsageError([Problem(str(m.output_dir / "assetpack.json"), "", "not found; run `assetbuild build` first")])
    name = f"{m.name}-{m.version}" + (f"-{m.profile}" if m.profile else "")
    folder = Path(dist) if dist else m.root / "dist"
    try:
        path, count = packer.make(m.output_dir, folder / f"{name}.zip")
    except ValueError as exc:
        click.echo(f"error: {m.output_dir} does not match its assetpack.json: {exc}; run `assetbuild build`",
                   err=True)
        sys.exit(1)
    click.echo(f"packed {count} files into {path}")


@main.command()
@manifest_arg
@click.option("--open", "open_", is_flag=True, help="Open it in the default web browser.")
@profile_opt
def report(manifest: str, open_: bool, profile: str | None) -> None:
    """Print the path of the build report, <output>/report.html (written by every build).

    It lists every asset with a player, its waveform, loudness and true peak against the
    target, loop points and whether the last build generated, re-processed or reused it.
    """
    from .export.report import REPORT

    m = _load(manifest, profile=profile)
    path = (m.output_dir / REPORT).resolve()
    if not path.is_file():
        raise UsageError([Problem(str(path), "", "not found; run `assetbuild build` first")])
    click.echo(str(path))
    if open_:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            click.echo(f"warning: no web browser could be started; open {path.as_uri()}", err=True)


@main.command()
@click.argument("pack", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(pack: str, as_json: bool) -> None:
    """Check a pack: files against SHA256SUMS and against assetpack.json.

    PACK is a zip written by `assetbuild pack`, or an output folder. Exit 1 when anything is
    missing, changed or unlisted.
    """
    from .export import pack as packer

    report = packer.verify(Path(pack))
    if as_json:
        click.echo(json.dumps({"ok": report.ok, "files": report.files, "problems": report.problems}))
    else:
        for problem in report.problems:
            click.echo(f"error: {problem}", err=True)
        if report.ok:
            click.echo(f"ok: {report.files} files verified in {pack}")
        else:
            click.echo(f"{len(report.problems)} problems in {pack}", err=True)
    sys.exit(0 if report.ok else 1)


@main.command()
@manifest_arg
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per rebuild on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the one-line summary per rebuild and errors.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--copy", is_flag=True, help="Copy outputs instead of hardlinking them from the cache.")
@click.option("--debounce", type=click.FloatRange(min=0), default=0.1, show_default=True, metavar="SECONDS",
              help="Quiet time after the last change before rebuilding.")
@model_opts
@profile_opt
@cache_opt
def watch(manifest: str, as_json: bool, quiet: bool, jobs: int | None, copy: bool, debounce: float,
          profile: str | None, cache_dir: str | None) -> None:
    """Build, then rebuild what changed whenever MANIFEST, its includes or its input files change.

    Stops on Ctrl-C (exit 0). A manifest with errors is reported and the last good output kept.
    See docs/watch.md.
    """
    from .watch import Settings
    from .watch import watch as run_watch

    settings = Settings(Path(manifest), profile=profile, cache_dir=Path(cache_dir) if cache_dir else None,
                        jobs=jobs or 0, copy=copy, as_json=as_json, quiet=quiet, debounce=debounce)
    sys.exit(run_watch(settings))


@main.command()
@click.argument("sequence")
@manifest_arg
@click.option("--json", "as_json", is_flag=True, help="Print the sequence's record (cue sheet) as JSON.")
@cache_opt
def preview(sequence: str, manifest: str, as_json: bool, cache_dir: str | None) -> None:
    """Render one SEQUENCE (and the assets it places) and print its timeline.

    Writes into .assetbuild/preview/SEQUENCE/, sharing the cache with real builds, so the
    next `assetbuild build` reuses everything it generated.
    """
    from .manifest.sequence import preview_manifest
    from .pipeline.run import Options
    from .pipeline.run import build as run_build

    m = _load(manifest, quiet=as_json)
    ids = [s.id for s in m.sequences]
    if sequence not in ids:
        raise UsageError([Problem(manifest, "", f"no sequence '{sequence}'" + did_you_mean(sequence, ids)
                                  + f" (sequences: {', '.join(ids) or 'none defined'})")])
    scratch = preview_manifest(m, sequence)
    result = run_build(scratch, Options(cache_dir=Path(cache_dir) if cache_dir else None))
    for f in result.failures:
        click.echo(f"failed    {f.id}: {f.error}", err=True)
    doc = json.loads((scratch.output_dir / "assetpack.json").read_text(encoding="utf-8"))
    record = next((r for r in doc.get("sequences", []) if r["id"] == sequence), None)
    if record is None:
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(record))
    else:
        from .pipeline.sequences import timeline_text

        click.echo(timeline_text(record), nl=False)
        click.echo(f"mix: {scratch.output_dir / record['file']}")
    sys.exit(1 if result.failures else 0)


@main.group()
def cache() -> None:
    """Manage the content-addressed cache."""


remote_url_opt = click.option("--remote-cache", "remote_url", metavar="URL", envvar="ASSETBUILD_REMOTE_CACHE",
                              help="The remote cache (default: [cache] remote).")


def _team_cache(manifest: str, remote_url: str | None, cache_dir: str | None,
                write: bool) -> tuple[RemoteSpec, dict[str, set[str]], Cache, Remote]:
    """For `cache push` and `cache pull`: the remote, the locked keys, the local cache."""
    from .pipeline.cache import Cache
    from .pipeline.remote import Remote, resolve
    from .pipeline.state import paths_of

    m = _load(manifest)
    spec = resolve(m, remote_url, write=write, require=True)
    assert spec is not None
    return spec, _locked_keys(m), Cache(paths_of(m, Path(cache_dir) if cache_dir else None).cache), Remote(spec)


def _locked_keys(m: Manifest, locks: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """The stage keys the lockfiles reference: those named, else the main build's and every
    profile's. A named lockfile that cannot be read is an error, never "nothing to keep"."""
    from .pipeline.lock import LOCK_VERSION, read_lock
    from .pipeline.state import lock_path

    paths = [Path(p) for p in locks] or [lock_path(m.root, p) for p in [None, *m.profiles]]
    entries: list[dict[str, Any]] = []
    for path in paths:
        found = read_lock(path)
        if locks and not found and not path.is_file():
            raise UsageError([Problem(str(path), "", "no such lockfile")])
        if locks and not found:
            raise UsageError([Problem(str(path), "", f"is not an assetbuild lockfile (version {LOCK_VERSION})")])
        entries += found.values()
    return {"generate": {a["generate"] for a in entries if a.get("generate")},
            "process": {a["process"] for a in entries if a.get("process")}}


@cache.command("gc")
@manifest_arg
@click.option("--remote", "on_remote", is_flag=True, help="Collect the remote cache instead of the local one.")
@click.option("--older-than", metavar="AGE", default="30d", show_default=True,
              help="With --remote: only what is older than this (e.g. 30d, 12h), so builds under way keep "
                   "what they just uploaded.")
@click.option("--lock", "locks", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="With --remote: keep what these lockfiles reference (repeat; default: this project's).")
@click.option("--yes", is_flag=True, help="With --remote: delete (default: say what would go).")
@remote_url_opt
@cache_opt
def cache_gc(manifest: str, on_remote: bool, older_than: str, locks: tuple[str, ...], yes: bool,
             remote_url: str | None, cache_dir: str | None) -> None:
    """Delete cache entries the lockfile does not reference (with --remote, the team's cache)."""
    from .pipeline.cache import Cache
    from .pipeline.state import paths_of

    m = _load(manifest)
    keep = _locked_keys(m, locks)
    if on_remote:
        from .pipeline.remote import Remote, older_than_seconds, resolve

        spec = resolve(m, remote_url, write=True, require=True)
        assert spec is not None
        remote = Remote(spec)
        try:
            entries, blobs, size = remote.gc(keep["generate"] | keep["process"], older_than_seconds(older_than),
                                             delete=yes)
        finally:
            remote.close()
        verb = "removed" if yes else "would remove"
        click.echo(f"{verb} {entries} entries and {blobs} blobs ({size / 1e6:.1f} MB) from {spec.shown}"
                   + ("" if yes else "; run with --yes to delete"))
        return
    root = paths_of(m, Path(cache_dir) if cache_dir else None).cache
    removed, freed = Cache(root).gc(keep)
    click.echo(f"removed {removed} cache entries, freed {freed / 1e6:.1f} MB")


@cache.command("push")
@manifest_arg
@remote_url_opt
@cache_opt
def cache_push(manifest: str, remote_url: str | None, cache_dir: str | None) -> None:
    """Upload what the lockfiles reference from the local cache to the remote one."""
    spec, keep, cache, remote = _team_cache(manifest, remote_url, cache_dir, write=True)
    try:
        keys = [(stage, k) for stage in ("generate", "process") for k in sorted(keep[stage])]
        there = remote.which(k for _, k in keys)
        missing = [0]

        def push(stage_key: tuple[str, str]) -> None:
            if not remote.push(*stage_key, cache):
                missing[0] += 1

        remote.map(push, [sk for sk in keys if sk[1] not in there])
    finally:
        remote.close()
    click.echo(f"pushed {remote.uploaded} entries to {spec.shown} ({len(there)} already there"
               + (f", {missing[0]} not in the local cache" if missing[0] else "") + ")")


@cache.command("pull")
@manifest_arg
@remote_url_opt
@cache_opt
def cache_pull(manifest: str, remote_url: str | None, cache_dir: str | None) -> None:
    """Download what the lockfiles reference into the local cache (e.g. before going offline)."""
    spec, keep, cache, remote = _team_cache(manifest, remote_url, cache_dir, write=False)
    try:
        wanted = [k for stage in ("generate", "process") for k in sorted(keep[stage]) if not cache.has_entry(stage, k)]
        there = remote.which(wanted)
        remote.map(lambda key: remote.fetch(key, cache), sorted(there))
    finally:
        remote.close()
    local = sum(len(keep[s]) for s in keep) - len(wanted)
    click.echo(f"pulled {remote.fetched} entries ({remote.fetched_bytes / 1e6:.1f} MB) from {spec.shown}; "
               f"{local} were here already, {len(wanted) - len(there)} are in neither cache")


@main.command()
@manifest_arg
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", envvar="ASSETBUILD_TOKEN", default=None,
              help="Require 'Authorization: Bearer TOKEN' on every request (env ASSETBUILD_TOKEN).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: up to 4).")
@click.option("--cors-origin", "cors", multiple=True, metavar="ORIGIN",
              help="Let a web page from ORIGIN call the server (repeat for several; default: none).")
@click.option("--max-text", type=click.IntRange(min=1), default=5000, show_default=True, metavar="CHARS",
              help="Longest text one synthesis request may send (longer: 413).")
@click.option("--max-body", type=click.IntRange(min=1024), default=256 * 1024, show_default=True, metavar="BYTES",
              help="Largest request body (larger: 413).")
@click.option("--max-queued", type=click.IntRange(min=1), default=256, show_default=True, metavar="JOBS",
              help="Synthesis jobs admitted and not finished (more: 429 with Retry-After).")
@click.option("--max-batch-items", type=click.IntRange(min=1), default=100, show_default=True, metavar="N",
              help="Items one POST /tts/batch may hold (more: 413).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              metavar="SECONDS", help="Time one synthesis request may take (longer: 504; the job still "
                                      "finishes into the cache).")
@click.option("--watch", is_flag=True, help="Build at start and whenever the manifest or its inputs change "
                                             "(like `assetbuild watch`; /events and the report follow it).")
@model_opts
@cache_opt
def serve(manifest: str, host: str, port: int, token: str | None, jobs: int | None, cors: tuple[str, ...],
          max_text: int, max_body: int, max_queued: int, max_batch_items: int, timeout: float, watch: bool,
          cache_dir: str | None) -> None:
    """Serve MANIFEST over HTTP: synthesis through the build cache, assets, builds (docs/server.md)."""
    from .server.auth import bind_problem

    problem = bind_problem(host, token)
    if problem:
        raise UsageError(problem)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise UsageError(f"the server needs its extra ({exc.name} is missing): "
                         'pip install "assetbuild[server]"') from None
    from .server.app import create_app
    from .server.limits import Limits

    _load(manifest)  # warnings and problems, as `build` shows them
    limits = Limits(workers=jobs or 0, max_text_chars=max_text, max_body_bytes=max_body, max_queued=max_queued,
                    max_batch_items=max_batch_items, timeout=timeout)
    app = create_app(manifest, token=token, limits=limits, watch=watch,
                     cache_dir=Path(cache_dir) if cache_dir else None, cors_origins=cors)
    click.echo(f"serving {manifest} on http://{host}:{port} (API: /docs, schema: /openapi.json)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def backends(as_json: bool) -> None:
    """List backends, the kinds they serve and whether they can run here."""
    from . import backends as registry

    rows = registry.status_rows()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        status = "available" if r["available"] else f"unavailable: {r['reason']}"
        click.echo(f"{r['name']:<12} {', '.join(r['kinds']):<24} {status}")


@main.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def models_cmd(ctx: click.Context, as_json: bool) -> None:
    """List known models: size, licence of the weights, and whether they are on this machine.

    Builds never download weights; `assetbuild models pull NAME` does (or `build --allow-download`).
    """
    if ctx.invoked_subcommand is not None:
        return
    from .models.store import status_rows

    rows = status_rows()
    if as_json:
        click.echo(json.dumps(rows))
        return
    width = max((len(r["name"]) for r in rows), default=18)
    for r in rows:
        here = ", ".join(f"{impl}: {'present' if ok else 'missing'}" for impl, ok in r["present"].items())
        terms = r["licence"] + ("" if r["commercial"] else " (non-commercial)")
        if r["backend"] == "piper" and r["licence"] == "unknown" and not any(r["present"].values()):
            terms = "read when pulled"  # hub voices: from their MODEL_CARD
        click.echo(f"{r['name']:<{width}} {r['backend']:<10} {r['size_text']:>8}  {terms:<30} {here}")


@models_cmd.command("pull")
@click.argument("name")
@click.option("--implementation", type=click.Choice(["transformers", "audiocraft"]), default="transformers",
              show_default=True, help="Which weights layout to fetch (MusicGen has both).")
def models_pull(name: str, implementation: str) -> None:
    """Download model NAME (a known name or a Hugging Face repo id) into the Hugging Face cache,
    with the models it needs (text encoder, vocoder)."""
    from .models.catalog import KNOWN, find
    from .models.store import is_path, pull

    if is_path(name) or (find(name) is None and "/" not in name):
        close = difflib.get_close_matches(name, list(KNOWN), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"unknown model '{name}': give a name from `assetbuild models` or a hub repo id.{hint}")
    try:
        paths = pull(name, implementation)
    except BackendUnavailable as exc:  # e.g. the extra is missing: the whole message, as a usage error
        raise UsageError(str(exc)) from None
    except AssetbuildError:
        raise
    except Exception as exc:  # network, authentication (gated repos), disk full
        click.echo(f"error: could not download {name}: {first_line(exc)}", err=True)
        sys.exit(1)
    for path in paths:
        click.echo(f"{path}", err=True)


@main.command()
@click.argument("path", default=DEFAULT_MANIFEST, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a commented starter manifest."""
    from .manifest.schema import render
    from .starter import STARTER

    target = Path(path)
    if target.exists() and not force:
        click.echo(f"error: {target} already exists (use --force to overwrite)", err=True)
        sys.exit(2)
    schema = target.parent / ".assetbuild" / "assetbuild.schema.json"
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(render(), encoding="utf-8")
    target.write_text(STARTER.format(name=target.resolve().parent.name), encoding="utf-8")
    click.echo(f"wrote {target}; build it with: assetbuild build {target}")


@main.command(hidden=True)
def schema() -> None:
    """Print the manifest's JSON Schema."""
    from .manifest.schema import render

    click.echo(render(), nl=False)


def run() -> None:
    # Piped output (e.g. `| head`) closing early is not an error.
    try:
        main()
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    run()

