"""The team's remote cache: the local cache's entries and blobs on any filesystem fsspec knows.

Layout, like Bazel's remote cache::

    <root>/cas/<sha[:2]>/<sha256>   blobs, named by the sha256 of their bytes
    <root>/ac/<key[:2]>/<key>       action entries: a stage's outputs (blob names) and metadata, JSON

A blob is uploaded completely before the entry that names it, and every object is written
create-only (S3's ``If-None-Match: *``, an ``os.link`` on a shared folder): a half-finished
upload is never visible under its name, and of two writers racing on one key the first wins
and the second adopts its entry. Everything read is checked: an entry against the checksum
it carries, a blob against its name; a mismatch is a miss and a warning, never an exported
file. Entries are trusted as far as their writers are, which is why writing is a policy
(read-only unless asked, as in Pants).

A remote that cannot be reached is used no further in that build, with one warning (or, with
``require``, a :class:`RemoteUnavailable` error). Credentials never pass through here: fsspec
and its backends read them from the environment, profiles or instance roles.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import AssetbuildError, first_line
from .cache import Cache, entry_checksum

ENV = "ASSETBUILD_REMOTE_CACHE"
THREADS = 16  # listings, downloads and uploads at once: latency-bound, not CPU-bound
FEW = 32  # up to this many keys are asked about one by one (in parallel) rather than listed


class RemoteUnavailable(AssetbuildError):
    """The remote cache cannot be reached and ``--require-remote`` was given."""

    exit_code = 2


@dataclass(frozen=True)
class RemoteSpec:
    """Where the remote cache is and how this machine may use it (picklable, for workers)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)
    write: bool = False
    require: bool = False

    @property
    def shown(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` without any user name, password or query in it, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None and not parts.query:
        return url
    return urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))


# Defaults per protocol, under the user's options: a remote that has gone away must cost
# seconds, not the minutes of botocore's default retries.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "s3": {"config_kwargs": {"connect_timeout": 3, "read_timeout": 30, "retries": {"max_attempts": 2}}},
}


class Remote:
    def __init__(self, spec: RemoteSpec, warn: Callable[[str], None] | None = None):
        from ..errors import UsageError

        try:
            import fsspec
        except ImportError:
            raise UsageError('the remote cache needs its extra: pip install "assetbuild[remote]"') from None
        self.spec = spec
        self._warn_to = warn
        protocol = urlsplit(spec.url).scheme or "file"
        options = _merged(_DEFAULTS.get(protocol, {}), spec.options)
        if protocol == "s3" and "endpoint_url" not in options:
            endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options["endpoint_url"] = endpoint
        try:
            self.fs, root = fsspec.core.url_to_fs(spec.url, **options)
        except ImportError as exc:  # e.g. gs:// without gcsfs: fsspec's message names the package
            raise UsageError(f"remote cache {spec.shown}: {first_line(exc)}") from None
        except (ValueError, TypeError) as exc:  # an unknown protocol, a bad storage option
            raise UsageError(f"remote cache {spec.shown}: {first_line(exc)}") from None
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols
        # A web server lists no folders and takes no uploads: ask per key, and only read.
        self.web = bool({"http", "https"} & set(protocols))
        # An object store lists every key under a prefix in pages (s3fs, gcsfs, adlfs take one).
        self.store = not self.local and not self.web and "prefix" in inspect.signature(self.fs.find).parameters
        if self.web and spec.write:
            raise UsageError(f"remote cache {spec.shown}: an http(s) cache is read-only; upload through "
                             "the store behind it (s3://, file://, ...)")
        self.down: str | None = None  # why the remote is not read any more in this build
        self.write_down: str | None = None  # why nothing more is uploaded (reading goes on)
        self.warnings: list[str] = []
        self.known: set[str] = set()  # keys of entries known to be on the remote, intact
        self.bad_blobs: set[str] = set()  # blobs found corrupt or missing there: uploads repair them
        self.conflicts: list[tuple[str, str]] = []  # (stage, key): another writer's different result won
        self.fetched = 0  # entries downloaded
        self.fetched_bytes = 0
        self.uploaded = 0  # entries uploaded
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="assetbuild-remote")
        self._uploads: list[Future[None]] = []

    # -- paths -----------------------------------------------------------------------------
    def _entry_path(self, key: str) -> str:
        return f"{self.root}/ac/{key[:2]}/{key}"

    def _blob_path(self, sha: str) -> str:
        return f"{self.root}/cas/{sha[:2]}/{sha}"

    # -- reading ---------------------------------------------------------------------------
    def which(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that have an entry on the remote. A few are asked about one by
        one; more are found by listing (16 prefixes in parallel on an object store, the shard
        folders elsewhere), unless the remote is so big that listing it would cost more
        requests than asking: the cost follows the build's size, not the remote's."""
        wanted = sorted(set(keys))
        if not wanted or self.down:
            return set()
        # 16 listings in parallel take about pages/16 rounds; asking each key, len(wanted)/16.
        if self.web or len(wanted) <= FEW or (self.store and self._pages(wanted[0]) > len(wanted)):
            present = self._map(lambda k: self._exists(self._entry_path(k)), wanted)
            hits = {k for k, there in zip(wanted, present, strict=False) if there}
        else:
            found: set[str] = set()
            for names in self._map(self._listing, self._prefixes(set(wanted))):
                found.update(str(n).rstrip("/").rsplit("/", 1)[-1] for n in names)
            hits = set(wanted) & found
        with self._lock:
            self.known |= hits
        return hits

    def _pages(self, sample: str) -> float:
        """About how many listing pages (1,000 keys each) 16 prefix listings would take, from
        the size of one shard folder."""
        try:
            return 256 * len(self.fs.ls(f"{self.root}/ac/{sample[:2]}", detail=False, refresh=True)) / 1000
        except FileNotFoundError:
            return 0.0

    def _prefixes(self, wanted: set[str]) -> list[str]:
        """What to list: on an object store one prefix per first hex digit (16 listings in
        parallel, each paged by the store, whatever the number of shards); elsewhere each
        shard folder the keys fall in."""
        if self.store:
            return sorted({k[0] for k in wanted})
        return sorted({k[:2] for k in wanted})

    def _listing(self, prefix: str) -> list[str]:
        try:
            if self.store:
                return list(self.fs.find(f"{self.root}/ac", prefix=prefix))
            return list(self.fs.ls(f"{self.root}/ac/{prefix}", detail=False, refresh=True))
        except FileNotFoundError:
            return []

    def entry(self, key: str) -> dict[str, Any] | None:
        """The entry ``key`` as the remote has it (checksum verified), or None."""
        if self.down:
            return None
        data = self._read(self._entry_path(key))
        if data is None:
            return None
        try:
            body = json.loads(data)
            checksum = body.pop("checksum")
            if body.get("key") == key and checksum == entry_checksum(body) and body.get("stage") in (
                    "generate", "process"):
                return dict(body)
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
        self.warn(f"remote cache entry {key[:12]} is corrupt; ignored")
        self._forget(key)
        return None

    def fetch(self, key: str, cache: Cache) -> str | None:
        """Download the entry ``key`` and the blobs it names into ``cache`` (each checked against
        its sha256); return its stage, or None on a miss (a corrupt blob is one, with a warning)."""
        body = self.entry(key)
        if body is None:
            return None
        size = 0
        for sha in body.get("blobs", []):
            if cache.verified_blob(sha) is not None:
                continue
            data = self._read(self._blob_path(sha))
            if data is None:
                if not self.down:
                    self.warn(f"remote cache entry {key[:12]} names blob {sha[:12]}, which is not there; ignored")
                    self._forget(key, sha)
                return None
            if hashlib.sha256(data).hexdigest() != sha:
                self.warn(f"remote cache blob {sha[:12]} does not match its sha256; ignored")
                self._forget(key, sha)
                return None
            cache.put_bytes(data)
            size += len(data)
        stage = body.pop("stage")
        body.pop("key", None)
        body.pop("sizes", None)
        cache.put_entry(stage, key, body)
        with self._lock:
            self.fetched += 1
            self.fetched_bytes += size
            self.known.add(key)
        return str(stage)

    def submit_fetch(self, key: str, cache: Cache) -> Future[str | None]:
        return self._pool.submit(self._guarded, self.fetch, key, cache)

    def sizes(self, keys: Iterable[str]) -> int:
        """Bytes the entries ``keys`` name (as their writers recorded), read in parallel."""
        def size(key: str) -> int:
            body = self.entry(key)
            return sum((body or {}).get("sizes", {}).values()) if body else 0

        return sum(self._map(size, list(keys)))

    def _forget(self, key: str, sha: str | None = None) -> None:
        """What was found broken: not known to be intact, and repaired by the next upload."""
        with self._lock:
            self.known.discard(key)
            if sha is not None:
                self.bad_blobs.add(sha)

    # -- writing ---------------------------------------------------------------------------
    def push(self, stage: str, key: str, cache: Cache) -> bool:
        """Upload the local entry ``key`` and its blobs: every blob before the entry, those there
        already not sent again unless they were found broken. False when the local cache has
        no such entry. When another writer's entry for the key is there with other outputs
        (a backend that does not reproduce its takes), theirs stands and the key is noted in
        :attr:`conflicts`."""
        if self.down or key in self.known:
            return True
        local = cache.get_entry(stage, key)
        if local is None:
            return False
        sizes = {}
        for sha in local.get("blobs", []):
            blob = cache.verified_blob(sha)
            if blob is None:
                return False
            sizes[sha] = blob.stat().st_size
            path = self._blob_path(sha)
            if sha in self.bad_blobs:  # named by its content: overwriting with it can only repair
                self._put(path, blob.read_bytes())
                with self._lock:
                    self.bad_blobs.discard(sha)
            elif not self._exists(path):
                self._create(path, blob.read_bytes())
        body = {k: v for k, v in local.items() if k != "checksum"}
        body.update(stage=stage, key=key, sizes=sizes)
        body["checksum"] = entry_checksum(body)
        created = self._create(self._entry_path(key), json.dumps(body, sort_keys=True, indent=1).encode())
        if not created:
            theirs = self.entry(key)
            mine = "file" if stage == "process" else "audio"
            if theirs is not None and theirs.get(mine) != local.get(mine):
                with self._lock:
                    self.conflicts.append((stage, key))
        with self._lock:
            self.known.add(key)
            self.uploaded += int(created)
        return True

    def submit_push(self, stage: str, key: str, cache: Cache) -> Future[None] | None:
        """Upload in the background; :meth:`finish` waits. A failure is a warning, and stops
        the uploads (reading goes on)."""
        if not self.spec.write or self.down or self.write_down or key in self.known:
            return None
        future = self._pool.submit(self._uploading, stage, key, cache)
        with self._lock:
            self._uploads.append(future)
        return future

    def _uploading(self, stage: str, key: str, cache: Cache) -> None:
        if self.write_down:
            return
        try:
            self.push(stage, key, cache)
        except Exception as exc:  # denied, throttled, gone: never a failed build
            with self._lock:
                first = self.write_down is None
                if first:
                    self.write_down = first_line(exc)
            if first:
                self.warn(f"uploading to the remote cache {self.spec.shown} failed ({self.write_down}); "
                          "nothing more is uploaded in this build")

    def finish(self) -> None:
        """Wait for the uploads under way."""
        with self._lock:
            uploads, self._uploads = self._uploads, []
        wait(uploads)

    def close(self) -> None:
        self.finish()
        self._pool.shutdown(wait=True)

    # -- garbage collection ------------------------------------------------------------------
    def gc(self, keep: set[str], older_than: float, delete: bool = False) -> tuple[int, int, int]:
        """Entries whose key is not in ``keep`` and blobs no kept entry names, both last written
        more than ``older_than`` seconds ago (what a build under way just uploaded stays).
        Returns (entries, blobs, bytes) removed, or that would be without ``delete``. Nothing is
        removed unless every kept entry could be read (it names the blobs to keep)."""
        cutoff = time.time() - older_than
        entries = self.objects("ac")
        blobs = self.objects("cas")
        gone = {key for key, (_, _, stamp) in entries.items() if key not in keep and stamp < cutoff}
        kept = [key for key in entries if key not in gone]
        named: set[str] = set()
        bodies = self._map(self.entry, kept)
        unread = sum(1 for b in bodies if b is None) + len(kept) - len(bodies)
        if unread:
            raise GcRefused(f"{unread} of the entries to keep in {self.spec.shown} could not be read; nothing "
                            "was removed (they name the blobs to keep)")
        for body in bodies:
            named.update(body.get("blobs", []))
        orphans = {sha for sha, (_, _, stamp) in blobs.items() if sha not in named and stamp < cutoff}
        size = sum(entries[k][1] for k in gone) + sum(blobs[b][1] for b in orphans)
        if delete:  # entries first: an entry never names a blob that is gone
            self._map(self.fs.rm_file, [entries[k][0] for k in sorted(gone)])
            self._map(self.fs.rm_file, [blobs[b][0] for b in sorted(orphans)])
        return len(gone), len(orphans), size

    def objects(self, prefix: str) -> dict[str, tuple[str, int, float]]:
        """Every object under ``ac`` or ``cas``: name -> (path, size, last written as POSIX time)."""
        try:
            found = self.fs.find(f"{self.root}/{prefix}", detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            name = str(path).rsplit("/", 1)[-1]
            if name.endswith(".tmp"):
                continue
            modified = info.get("LastModified") or info.get("mtime") or info.get("created") or 0
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
            out[name] = (str(path), int(info.get("size") or 0), stamp)
        return out

    # -- plumbing --------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)
        if self._warn_to is not None:
            self._warn_to(message)

    def _gone(self, exc: BaseException) -> None:
        """Reading failed: use the remote no further (one warning), or with ``require`` raise,
        every time."""
        with self._lock:
            first = self.down is None
            if first:
                self.down = first_line(exc)
        if self.spec.require:
            raise RemoteUnavailable(f"remote cache {self.spec.shown} cannot be reached: {self.down}") from exc
        if first:
            self.warn(f"remote cache {self.spec.shown} cannot be reached ({self.down}); building locally")

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except RemoteUnavailable:
            raise
        except Exception as exc:  # a network or permission problem: never a failed build
            self._gone(exc)
            return None

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``fn`` over ``items`` on the remote's threads; a failure stops the remote (see _gone)."""
        return self._map(fn, items)

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        futures = [self._pool.submit(fn, item) for item in items]
        out = []
        for future in futures:
            try:
                out.append(future.result())
            except RemoteUnavailable:
                raise
            except Exception as exc:
                for rest in futures:
                    rest.cancel()
                self._gone(exc)  # raises with require
                return out
        return out

    def _read(self, path: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except Exception as exc:
            self._gone(exc)
            return None

    def _exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def _create(self, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` unless something is there; whether this call wrote it."""
        if self.local:
            # A shared folder: write beside it, then link into place, which fails if it exists.
            target = self.fs._strip_protocol(path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.link(tmp, target)
                return True
            except FileExistsError:
                return False
            finally:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        try:
            self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:  # another writer won: its entry stands
            return False
        except OSError as exc:
            if exc.errno == errno.EBUSY:  # S3's 409: a conditional write racing another on the key
                return False
            raise

    def _put(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path``, over what is there (only for blobs: named by content)."""
        if self.local:
            target = self.fs._strip_protocol(path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
            return
        self.fs.pipe_file(path, data)


class GcRefused(AssetbuildError):
    """``cache gc --remote`` could not read what it must keep, so it removed nothing."""


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, tables merged key by key (a user's ``config_kwargs`` keeps
    the default timeouts it does not set)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def spec_from(url: str | None, options: dict[str, Any] | None = None, write: bool = False,
              require: bool = False) -> RemoteSpec | None:
    return RemoteSpec(url, dict(options or {}), write, require) if url else None


def older_than_seconds(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or a number of days, in seconds."""
    from ..errors import UsageError

    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "d")
    try:
        amount = float(value)
    except ValueError:
        raise UsageError(f"--older-than: expected an age such as 30d or 12h, got {text!r}") from None
    if amount < 0 or amount != amount:
        raise UsageError(f"--older-than: expected an age such as 30d or 12h, got {text!r}")
    return amount * units[unit]


def resolve(manifest: Any, url: str | None = None, no_remote: bool = False, write: bool = False,
            require: bool = False) -> RemoteSpec | None:
    """The remote cache a command uses: ``--remote-cache`` (or $ASSETBUILD_REMOTE_CACHE), else
    the manifest's ``[cache] remote``; none with ``--no-remote``. Writing when ``--remote-write``
    or ``[cache] remote_write``. The manifest's ``[cache.options]`` apply either way."""
    from ..errors import UsageError
    from ..manifest.load import remote_url_problem

    if no_remote:
        if require:
            raise UsageError("--require-remote and --no-remote contradict each other")
        return None
    url = url or manifest.remote
    if not url:
        if require:
            raise UsageError("--require-remote: no remote cache is set (use --remote-cache URL, "
                             f"${ENV} or [cache] remote)")
        return None
    problem = remote_url_problem(url)
    if problem:
        raise UsageError(f"remote cache URL {problem}")
    spec = RemoteSpec(url, dict(manifest.remote_options), write or manifest.remote_write, require)
    if spec.write and urlsplit(url).scheme in ("http", "https"):
        raise UsageError(f"remote cache {spec.shown}: an http(s) cache is read-only; upload through the store "
                         "behind it (s3://, file://, ...)")
    return spec
