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
    """``url`` without any user name or password in it, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.hostname or ""))


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
        options = {**_DEFAULTS.get(protocol, {}), **spec.options}
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
        self.down: str | None = None  # why the remote is not used any more in this build
        self.warnings: list[str] = []
        self.known: set[str] = set()  # keys of entries known to be on the remote
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
        folders elsewhere), so a big build costs listings, not a request per key."""
        wanted = set(keys)
        if not wanted or self.down:
            return set()
        if self.web or len(wanted) <= FEW:  # a few keys, or a server that lists nothing: ask each
            present = self._map(lambda k: self._exists(self._entry_path(k)), sorted(wanted))
            hits = {k for k, there in zip(sorted(wanted), present, strict=False) if there}
        else:
            found: set[str] = set()
            for names in self._map(self._listing, self._prefixes(wanted)):
                found.update(str(n).rstrip("/").rsplit("/", 1)[-1] for n in names)
            hits = wanted & found
        with self._lock:
            self.known |= hits
        return hits

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
                return None
            if hashlib.sha256(data).hexdigest() != sha:
                self.warn(f"remote cache blob {sha[:12]} does not match its sha256; ignored")
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

    # -- writing ---------------------------------------------------------------------------
    def push(self, stage: str, key: str, cache: Cache) -> bool:
        """Upload the local entry ``key`` and its blobs (blobs first; nothing already there is
        sent again). False when the local cache has no such entry."""
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
            if not self._exists(path):
                self._create(path, blob.read_bytes())
        body = {k: v for k, v in local.items() if k != "checksum"}
        body.update(stage=stage, key=key, sizes=sizes)
        body["checksum"] = entry_checksum(body)
        created = self._create(self._entry_path(key), json.dumps(body, sort_keys=True, indent=1).encode())
        with self._lock:
            self.known.add(key)
            self.uploaded += int(created)
        return True

    def submit_push(self, stage: str, key: str, cache: Cache) -> None:
        """Upload in the background; :meth:`finish` waits. A failure is a warning."""
        if not self.spec.write or self.down or key in self.known:
            return
        future = self._pool.submit(self._guarded, self.push, stage, key, cache)
        with self._lock:
            self._uploads.append(future)

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
        Returns (entries, blobs, bytes) removed, or that would be without ``delete``."""
        cutoff = time.time() - older_than
        entries = self.objects("ac")
        blobs = self.objects("cas")
        gone = {key for key, (_, _, stamp) in entries.items() if key not in keep and stamp < cutoff}
        kept = [key for key in entries if key not in gone]
        named: set[str] = set()
        for body in self.map(self.entry, kept):
            if body is None and self.down:
                raise RemoteUnavailable(f"remote cache {self.spec.shown} failed during gc: {self.down}")
            named.update((body or {}).get("blobs", []))
        orphans = {sha for sha, (_, _, stamp) in blobs.items() if sha not in named and stamp < cutoff}
        size = sum(entries[k][1] for k in gone) + sum(blobs[b][1] for b in orphans)
        if delete:  # entries first: an entry never names a blob that is gone
            self.map(self.fs.rm_file, [entries[k][0] for k in sorted(gone)])
            self.map(self.fs.rm_file, [blobs[b][0] for b in sorted(orphans)])
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
        """The remote failed: use it no further (one warning), or raise with ``require``."""
        with self._lock:
            first = self.down is None
            if first:
                self.down = first_line(exc)
        if first:
            if self.spec.require:
                raise RemoteUnavailable(f"remote cache {self.spec.shown} cannot be reached: {self.down}") from exc
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
            except Exception as exc:
                self._gone(exc)
                return []
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
