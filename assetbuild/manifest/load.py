"""Read a TOML manifest, layer the defaults and validate every key.

Every problem is collected (not just the first) and raised together as a ManifestError, each
naming the file, the entry and the field.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import ManifestError, Problem, UsageError, did_you_mean
from ..fields import Field
from . import include, sequence
from .model import (
    BUILD_FIELDS,
    BUILTIN_DEFAULTS,
    CACHE_FIELDS,
    DEFAULT_PREFIXES,
    EXPORT_FIELDS,
    KINDS,
    LEXICON_KEYS,
    LOCALE_PATTERN,
    OPUS_RATES,
    PREFIX_PATTERN,
    PROFILE_FIELDS,
    PROFILE_NAME,
    PROJECT_FIELDS,
    SECRET_OPTIONS,
    VOICE_FIELDS,
    Asset,
    Manifest,
    entry_fields,
    id_problem,
    profile_fields,
)


class Registry(Protocol):
    """The backends the validator checks entries against (``assetbuild.backends`` itself)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> Any:
        """The backend class: its ``kinds`` and ``settings`` (KeyError when unknown)."""
        ...


def remote_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name a remote cache, or None. Credentials in it would be committed."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password or parts.username:
        return "has a user or password in it: credentials come from the environment, never from the manifest"
    if parts.query:
        return "has a query in it (tokens and signatures are credentials): credentials come from the environment"
    if "://" not in url and not url.startswith("/"):
        return f"expected a URL such as s3://bucket/prefix or file:///shared/cache, got {url!r}"
    return None


def _credentials(options: dict[str, Any], where: str = "") -> list[str]:
    """The keys of ``options``, at any depth, that hold credentials: names of secrets, an
    Authorization header, or a URL with a user or password in it."""
    from urllib.parse import urlsplit

    found = []
    for key, value in options.items():
        name = f"{where}{key}"
        if str(key).lower() in SECRET_OPTIONS or str(key).lower() == "authorization":
            found.append(name)
        elif isinstance(value, dict):
            found += _credentials(value, name + ".")
        elif isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            if parts.username or parts.password:
                found.append(name)
    return found


def default_registry() -> Registry:
    """The installed backends. The one place the manifest package asks for them, when a
    manifest is validated (so importing the manifest package imports no backend)."""
    from .. import backends

    return backends


TOP_LEVEL = ("project", "defaults", "voices", "lexicon", "profiles", "export", "cache", "build", "include",
             "sequence") + KINDS


def derive_seed(asset_id: str) -> int:
    """Stable seed for an entry without one: the same id always gets the same seed."""
    return int.from_bytes(hashlib.sha256(asset_id.encode()).digest()[:4], "big")


def spread(amount: float, n: int, seed: int) -> list[float]:
    """``n`` values evenly over [-amount, +amount], in an order fixed by ``seed``: takes cover the
    range (random draws could bunch up) and do not simply rise take by take."""
    if not amount or n < 2:
        return [0.0] * n
    import random

    values = [round(amount * (2 * i / (n - 1) - 1), 3) for i in range(n)]
    random.Random(seed).shuffle(values)
    return values



def read_toml(path: Path, shown: str) -> tuple[dict[str, Any], bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError([Problem(shown, "", "no such manifest (create one with `assetbuild init`)")]) from None
    except OSError as exc:
        raise UsageError([Problem(shown, "", f"cannot read: {exc.strerror}")]) from None
    try:
        return tomllib.loads(data.decode("utf-8")), data
    except UnicodeDecodeError:
        raise ManifestError([Problem(shown, "", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([Problem(shown, "", f"TOML syntax error: {exc}")]) from None


def load(path: str | os.PathLike[str], profile: str | None = None, registry: Registry | None = None) -> Manifest:
    """Load and validate the manifest at ``path``; raise ManifestError listing every problem.

    With ``profile``, that ``[profiles.NAME]`` table's values override the entries' processing
    keys, the sample rate and the output folder. ``registry``: the backends to check against
    (default: the installed ones).
    """
    path = Path(path)
    shown = str(path)
    raw, data = read_toml(path, shown)
    sources = include.read(path.resolve(), shown, raw, data)
    return validate(path.resolve(), shown, raw, sources, profile, registry)


def validate(path: Path, shown: str, raw: dict[str, Any], sources: include.Sources,
             profile: str | None = None, registry: Registry | None = None) -> Manifest:
    """Validate manifest tables already read (and merged, ``sources``) as :func:`load` does;
    ``assetbuild serve`` checks a one-line request against the served manifest this way."""
    manifest = _Validator(path, shown, raw, registry or default_registry(), profile, sources).run()
    manifest.digest = sources.digest
    return manifest


class _Validator:
    def __init__(self, path: Path, shown: str, raw: dict[str, Any], registry: Registry, profile: str | None = None,
                 sources: include.Sources | None = None):
        self.sources = sources or include.read(path, shown, raw, b"")
        self.path, self.file, self.raw, self.profile_name = path, shown, self.sources.raw, profile
        self.top_keys = list(raw)
        self.problems: list[Problem] = list(self.sources.problems)
        self.registry = registry
        self.backend_names = registry.names()
        self._settings: dict[str, dict[str, Field]] = {}
        self._entry_bases: dict[tuple[str, str, str | None], tuple[Any, ...]] = {}

    def problem(self, where: str, message: str, field: str | None = None) -> None:
        self.problems.append(Problem(self.file, where, message, field))

    # -- helpers ---------------------------------------------------------------------------
    def table(self, value: Any, where: str, field: str | None = None) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(where, f"expected a table, got {type(value).__name__}", field)
        return None

    def check_fields(self, table: dict[str, Any], fields: dict[str, Field], where: str,
                     skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Type-check ``table`` against ``fields``; report unknown keys. Return the valid values."""
        good = {}
        for key, value in table.items():
            if key in skip:
                continue
            spec = fields.get(key)
            if spec is None:
                self.problem(where, "unknown key" + did_you_mean(key, sorted(fields)), key)
                continue
            value, issue = spec.check(value)
            if issue:
                self.problem(where, issue, key)
            else:
                good[key] = value
        return good

    def backend_settings(self, name: str) -> dict[str, Field]:
        if name not in self._settings:
            self._settings[name] = self._load_settings(name)
        return self._settings[name]

    def _load_settings(self, name: str) -> dict[str, Field]:
        try:
            return {f.name: f for f in self.registry.get(name).settings}
        except KeyError:
            return {}
        except Exception as exc:  # a broken third-party plugin must not crash validation
            self.problem("", f"backend '{name}' could not be imported: {exc}")
            return {}

    def check_backend(self, name: str, kind: str, where: str, field: str = "backend") -> bool:
        if name not in self.backend_names:
            self.problem(where, f"unknown backend '{name}'" + did_you_mean(name, self.backend_names)
                         + "; see `assetbuild backends`", field)
            return False
        kinds = self.registry.get(name).kinds
        if kind not in kinds:
            self.problem(where, f"backend '{name}' cannot generate {kind} (it serves: "
                         + ", ".join(sorted(kinds)) + ")", field)
            return False
        return True

    # -- sections --------------------------------------------------------------------------
    @contextmanager
    def reading(self, file: str) -> Iterator[None]:
        """Problems found meanwhile name ``file`` (an included file) instead of the main one."""
        main, self.file = self.file, file
        try:
            yield
        finally:
            self.file = main

    def run(self) -> Manifest:
        for key in self.top_keys:
            if key not in TOP_LEVEL:
                self.problem("", "unknown top-level key" + did_you_mean(key, TOP_LEVEL), key)
        project = self.project()
        self.locales: list[str] = project["locales"]
        self.missing_locale: str = project.pop("missing_locale")
        self.warnings: list[Problem] = list(self.sources.warnings)
        defaults, kind_defaults = self.defaults()
        voices = self.voices()
        self.lexicon = self.read_lexicon()
        profiles = self.profiles(project["output_dir"])
        self.overrides: tuple[dict[str, Any], dict[str, dict[str, Any]]] = ({}, {})
        if self.profile_name is not None:
            if self.profile_name not in profiles:
                if self.problems:  # the profile may be misspelt in a table that has problems
                    raise ManifestError(self.problems)
                known = ", ".join(sorted(profiles)) or "none defined"
                raise UsageError([Problem(self.file, "", f"no profile '{self.profile_name}' (profiles: {known})"
                                          + did_you_mean(self.profile_name, sorted(profiles)))])
            glob, kinds, project["output_dir"] = profiles[self.profile_name]
            project["sample_rate"] = glob.pop("sample_rate", project["sample_rate"])
            self.overrides = (glob, kinds)
        engines, prefixes = self.export()
        remote, remote_write, remote_options = self.cache()
        runs = self.check_fields(self.table(self.raw.get("build", {}), "[build]") or {},
                                 {f.name: f for f in BUILD_FIELDS}, "[build]")
        manifest = Manifest(path=self.path, voices=voices, lexicon=self.lexicon, profile=self.profile_name,
                            profiles=sorted(profiles), engines=engines, prefixes=prefixes, remote=remote,
                            remote_write=remote_write, remote_options=remote_options,
                            executor=runs.get("executor", "local"), ray_address=runs.get("ray_address"),
                            sources=list(self.sources.files), include_patterns=list(self.sources.patterns),
                            **project)
        seen: dict[str, tuple[str, str]] = {}
        for kind in KINDS:
            for e in self.sources.entries[kind]:
                with self.reading(e.file):
                    assets = self.entry(kind, e.index, e.value, defaults, kind_defaults.get(kind, {}), voices,
                                        manifest.sample_rate)
                    for asset in assets:
                        folded = asset.id.lower()
                        if folded in seen:
                            where, file = seen[folded]
                            other = where if file == e.file else f"{where} in {file}"
                            self.problem(asset.where, f"duplicate id '{asset.id}' (also used by {other}; "
                                         "ids must be unique across all kinds, ignoring case)", "id")
                        else:
                            seen[folded] = (asset.where, e.file)
                            manifest.assets.append(asset)
        self.sequences(manifest, seen, defaults, kind_defaults, voices)
        if self.problems:
            raise ManifestError(self.problems)
        manifest.warnings = self.warnings
        return manifest

    def sequences(self, manifest: Manifest, seen: dict[str, tuple[str, str]], defaults: dict[str, Any],
                  kind_defaults: dict[str, dict[str, Any]], voices: dict[str, dict[str, Any]]) -> None:
        """`[[sequence]]`: validate, add their inline entries as assets, check what they place."""
        names = {a.name: a for a in manifest.assets if a.locale in (None, self.locales[0] if self.locales else None)}
        groups = {a.entry_id for a in manifest.assets if a.take is not None}
        for e in self.sources.entries["sequence"]:
            with self.reading(e.file):
                seq, inline = sequence.parse(self, e.value, e.index)
                for i, (kind, table) in enumerate(inline, 1):
                    for asset in self.entry(kind, i, table, defaults, kind_defaults.get(kind, {}), voices,
                                            manifest.sample_rate):
                        if asset.id.lower() in seen:
                            where, file = seen[asset.id.lower()]
                            self.problem(asset.where, f"duplicate id '{asset.id}' (also used by {where} in {file})",
                                         "id")
                            continue
                        seen[asset.id.lower()] = (asset.where, e.file)
                        manifest.assets.append(asset)
                        if asset.locale in (None, self.locales[0] if self.locales else None):
                            names[asset.name] = asset
                if seq is None:
                    continue
                if seq.id.lower() in seen:
                    where, file = seen[seq.id.lower()]
                    self.problem(seq.where, f"duplicate id '{seq.id}' (also used by {where} in {file})", "id")
                    continue
                seen[seq.id.lower()] = (seq.where, e.file)
                unknown = [ref for ref in seq.asset_ids() if ref not in names]
                for ref in unknown:
                    hint = (f"; '{ref}' has takes: place one, e.g. '{ref}_01'" if ref in groups
                            else did_you_mean(ref, sorted(names)))
                    self.problem(seq.where, f"places '{ref}', which is not an asset of this manifest{hint}")
                if not unknown:
                    for issue in sequence.check(seq, {n: a.kind for n, a in names.items()}):
                        self.problem(seq.where, issue)
                manifest.sequences.append(seq)

    def project(self) -> dict[str, Any]:
        fields = {f.name: f for f in PROJECT_FIELDS}
        table = self.table(self.raw.get("project", {}), "[project]") or {}
        values = {f.name: f.default for f in PROJECT_FIELDS}
        values["name"] = self.path.parent.name or "assetbuild"
        values.update(self.check_fields(table, fields, "[project]"))
        output = self.path.parent / values.pop("output")
        locales = values.get("locales") or []
        for loc in locales:
            if not LOCALE_PATTERN.fullmatch(loc):
                self.problem("[project]", f"'{loc}' is not a locale code (use e.g. en, fr, pt-BR)", "locales")
        return {"name": values["name"], "version": values["version"], "output_dir": output,
                "sample_rate": values["sample_rate"], "locales": list(locales),
                "missing_locale": values["missing_locale"]}

    def profiles(self, output_dir: Path) -> dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]], Path]]:
        """`[profiles.NAME]`: (overrides for every kind, overrides per kind, output folder)."""
        table = self.table(self.raw.get("profiles", {}), "[profiles]") or {}
        allowed = {f.name: f for f in PROFILE_FIELDS} | profile_fields()
        out = {}
        for name, prof in table.items():
            where = f"[profiles.{name}]"
            if not PROFILE_NAME.fullmatch(name):
                self.problem("[profiles]", f"'{name}' is not a usable profile name (letters, digits, '_', '-')")
                continue
            prof = self.table(prof, where)
            if prof is None:
                continue
            glob = self.check_fields(prof, allowed, where, skip=KINDS)
            kinds = {}
            for kind in KINDS:
                sub = self.table(prof[kind], f"[profiles.{name}.{kind}]") if kind in prof else None
                if sub is not None:
                    kinds[kind] = self.check_fields(sub, profile_fields(kind), f"[profiles.{name}.{kind}]")
            output = self.path.parent / glob.pop("output") if "output" in glob else Path(f"{output_dir}-{name}")
            if output.resolve() == output_dir.resolve():
                self.problem(where, "is the project's own output folder; a profile needs a tree of its own",
                             "output")
            out[name] = (glob, kinds, output)
        return out

    def export(self) -> tuple[list[str], dict[str, str]]:
        """`[export]`: the engines written after each build and the asset-name prefix per kind."""
        table = self.table(self.raw.get("export", {}), "[export]") or {}
        values = self.check_fields(table, {f.name: f for f in EXPORT_FIELDS}, "[export]", skip=("prefixes",))
        prefixes = dict(DEFAULT_PREFIXES)
        given = self.table(table.get("prefixes", {}), "[export.prefixes]") or {}
        for kind, prefix in given.items():
            if kind not in KINDS:
                self.problem("[export.prefixes]", "unknown kind" + did_you_mean(kind, KINDS), kind)
            elif not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
                self.problem("[export.prefixes]", "expected letters, digits and '_' (at most 32), e.g. \"VO_\"",
                             kind)
            else:
                prefixes[kind] = prefix
        return values.get("engines", []), prefixes

    def cache(self) -> tuple[str | None, bool, dict[str, Any]]:
        """`[cache]`: the remote cache, whether to write to it, and its storage options."""
        table = self.table(self.raw.get("cache", {}), "[cache]") or {}
        values = self.check_fields(table, {f.name: f for f in CACHE_FIELDS}, "[cache]", skip=("options",))
        remote = values.get("remote")
        if remote is not None and (problem := remote_url_problem(remote)):
            self.problem("[cache]", problem, "remote")
            remote = None
        options = self.table(table.get("options", {}), "[cache.options]") or {}
        secrets = sorted(_credentials(options))
        for key in secrets:
            self.problem("[cache.options]", "is a credential: set it in the environment (AWS_SECRET_ACCESS_KEY, "
                         "a profile, an instance role, ...), never in the manifest, which is committed", key)
        return remote, bool(values.get("remote_write", False)), {} if secrets else options

    def read_lexicon(self) -> dict[str, dict[str, str]]:
        table = self.table(self.raw.get("lexicon", {}), "[lexicon]") or {}
        out = {}
        for word, entry in table.items():
            if not word.strip():
                self.problem("[lexicon]", "has an empty word")
                continue
            if isinstance(entry, str) and entry.strip():
                out[word] = {"say": entry}
            elif isinstance(entry, dict) and entry and set(entry) <= set(LEXICON_KEYS) and all(
                    isinstance(v, str) and v.strip() for v in entry.values()):
                out[word] = dict(entry)
            else:
                self.problem("[lexicon]", 'expected a respelling ("zy-loth") or a table '
                             '{ say = "...", phonemes = "..." }', word)
        return out

    def defaults(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        table = self.table(self.raw.get("defaults", {}), "[defaults]") or {}
        all_fields: dict[str, Field] = {}
        per_kind: dict[str, dict[str, Field]] = {}
        for kind in KINDS:
            fields: dict[str, Field] = {}
            for name in self.backend_names:
                cls = self._backend_class(name)
                if cls is not None and kind in cls.kinds:
                    fields.update(self.backend_settings(name))
            fields.update(entry_fields(kind))  # entry keys keep their meaning over settings
            fields.pop("id")
            per_kind[kind] = fields
            all_fields.update(fields)
        glob = self.check_fields(table, all_fields, "[defaults]", skip=KINDS)
        kinds = {}
        for kind in KINDS:
            if kind in table:
                sub = self.table(table[kind], f"[defaults.{kind}]")
                if sub is not None:
                    kinds[kind] = self.check_fields(sub, per_kind[kind], f"[defaults.{kind}]")
        for where, values in [("[defaults]", glob)] + [(f"[defaults.{k}]", v) for k, v in kinds.items()]:
            if "backend" in values and values["backend"] not in self.backend_names:
                self.problem(where, f"unknown backend '{values['backend']}'"
                             + did_you_mean(values["backend"], self.backend_names), "backend")
        return glob, kinds

    def _backend_class(self, name: str) -> Any:
        try:
            return self.registry.get(name)
        except Exception:
            return None

    def voices(self) -> dict[str, dict[str, Any]]:
        table = self.table(self.raw.get("voices", {}), "[voices]") or {}
        voices = {}
        default_backend = BUILTIN_DEFAULTS["dialogue"]["backend"]
        for name, voice in table.items():
            with self.reading(self.sources.voice_files.get(name, self.file)):
                values = self.voice(name, voice, default_backend)
            if values is not None:
                voices[name] = values
        return voices

    def voice(self, name: str, voice: Any, default_backend: str) -> dict[str, Any] | None:
        where = f"[voices.{name}]"
        voice = self.table(voice, where)
        if voice is None:
            return None
        backend = voice.get("backend", default_backend)
        if not isinstance(backend, str):
            self.problem(where, "expected a string", "backend")
            return None
        if not self.check_backend(backend, "dialogue", where):
            return None
        fields = {f.name: f for f in VOICE_FIELDS} | self.backend_settings(backend)
        values = self.check_fields(voice, fields, where, skip=("locales",))
        values["backend"] = backend
        values["locales"] = self.voice_locales(voice.get("locales", {}), where, backend)
        return values

    def voice_locales(self, table: Any, where: str, backend: str) -> dict[str, dict[str, Any]]:
        """`[voices.NAME.locales.LOCALE]`: the voice's settings for one language."""
        table = self.table(table, where, "locales") or {}
        out = {}
        for loc, sub in table.items():
            sub = self.table(sub, f"{where[:-1]}.locales.{loc}]")
            if sub is None:
                continue
            if loc not in self.locales:
                self.problem(where, f"has settings for locale '{loc}', which is not in [project] locales"
                             + (f" ({', '.join(self.locales)})" if self.locales else "")
                             + did_you_mean(loc, self.locales), "locales")
                continue
            out[loc] = self.check_fields(sub, self.backend_settings(backend), f"{where[:-1]}.locales.{loc}]")
        return out

    def entry(self, kind: str, index: int, entry: Any, defaults: dict[str, Any],
              kind_defaults: dict[str, Any], voices: dict[str, dict[str, Any]],
              sample_rate: int) -> list[Asset]:
        where = f"{kind} #{index}"
        if not isinstance(entry, dict):
            self.problem(where, f"expected a table, got {type(entry).__name__}")
            return []
        before = len(self.problems)
        asset_id = entry.get("id")
        if asset_id is None:
            self.problem(where, 'is required: a unique name such as "intro_01"', "id")
        elif not isinstance(asset_id, str):
            self.problem(where, f"expected a string, got {type(asset_id).__name__}", "id")
        elif (issue := id_problem(asset_id)) is not None:
            self.problem(where, issue, "id")
        else:
            where = f'{kind} "{asset_id}"'

        # Which backend: entry > voice > [defaults.KIND] > [defaults] > built-in.
        voice_name = entry.get("voice", kind_defaults.get("voice", defaults.get("voice")))
        voice = voices.get(voice_name) if isinstance(voice_name, str) else None
        if kind == "dialogue" and isinstance(voice_name, str) and voice is None:
            known = ", ".join(sorted(voices)) or "none defined"
            self.problem(where, f"unknown voice '{voice_name}' (voices: {known})"
                         + did_you_mean(voice_name, sorted(voices)), "voice")
        backend = entry.get("backend")
        if backend is not None and voice is not None and backend != voice["backend"]:
            self.problem(where, f"is '{backend}' but voice '{voice_name}' uses '{voice['backend']}'", "backend")
        if backend is None:
            backend = (voice or {}).get("backend") or kind_defaults.get("backend") or defaults.get(
                "backend") or BUILTIN_DEFAULTS[kind]["backend"]
        if not isinstance(backend, str):
            self.problem(where, f"expected a string, got {type(backend).__name__}", "backend")
            return []
        if not self.check_backend(backend, kind, where):
            return []

        fields, settings_fields, allowed, required, base_values, overrides, base_settings = self.entry_base(
            kind, backend, voice_name if voice is not None else None, voice, defaults, kind_defaults)
        given = self.check_fields(entry, allowed, where)
        for f in required:
            if f.name not in entry:
                self.problem(where, "is required: " + f.doc[0].lower() + f.doc[1:], f.name)

        values = dict(base_values)
        values.update({k: v for k, v in given.items() if k in fields})
        values.update(overrides)  # a profile's values win over the entry's own
        # A key that is also an entry key (e.g. `voice`, the voice table) keeps its entry meaning
        # everywhere but inside the voice table, where it is the backend's setting.
        settings = dict(base_settings)
        settings.update({k: v for k, v in given.items() if k in settings_fields and k not in fields})

        formats = values.get("format") or []
        if "opus" in formats and sample_rate not in OPUS_RATES:
            self.problem(where, f"opus needs a project sample_rate of {', '.join(map(str, OPUS_RATES))} "
                         f"(project has {sample_rate})", "format")
        if "flac" in formats and values.get("bit_depth") == 32:
            self.problem(where, "flac supports 16 or 24 bits", "bit_depth")
        if len(self.problems) > before:
            return []
        assert isinstance(asset_id, str)  # else a problem above

        if kind == "dialogue":
            values.setdefault("speaker", voice_name or "narrator")
            return self.dialogue(asset_id, where, values, settings, voice, voice_name, backend, given)
        base_seed = values.get("seed")
        # Each take is cached on its own: the take count is not part of a take's key.
        takes = values.pop("variations", 1)
        common: dict[str, Any] = dict(kind=kind, entry_id=asset_id, backend=backend, settings=settings,
                                      voice=voice_name if kind == "dialogue" else None)
        if takes == 1:
            seed = base_seed if base_seed is not None else derive_seed(asset_id)
            return [Asset(id=asset_id, take=None, seed=seed, values=values, where=where, **common)]
        # With pitch/gain variation every take transforms take 1's sound (so its generation is
        # shared, and cached from a build without variation too).
        transform = bool(values.get("pitch_variation") or values.get("gain_variation"))
        pitches = spread(values.get("pitch_variation", 0.0), takes, derive_seed(asset_id + ":pitch"))
        gains = spread(values.get("gain_variation", 0.0), takes, derive_seed(asset_id + ":gain"))
        out = []
        for take in range(1, takes + 1):
            take_id = f"{asset_id}_{take:02d}"
            n = 1 if transform else take
            seed = (base_seed + n - 1) % 2**32 if base_seed is not None else derive_seed(f"{asset_id}_{n:02d}")
            out.append(Asset(id=take_id, take=take, seed=seed, values=values,
                             where=f'{kind} "{asset_id}" (take {take})', pitch_shift=pitches[take - 1],
                             gain_offset=gains[take - 1], **common))
        return out

    def entry_base(self, kind: str, backend: str, voice_name: str | None, voice: dict[str, Any] | None,
                   defaults: dict[str, Any], kind_defaults: dict[str, Any]) -> tuple[Any, ...]:
        """What every entry of this kind, backend and voice shares: the fields it accepts and the
        values layered under its own (built-in, [defaults], [defaults.KIND], voice; the profile's
        over them). Computed once per combination: 10,000 entries share a handful."""
        memo = (kind, backend, voice_name)
        if memo not in self._entry_bases:
            fields = entry_fields(kind)
            settings_fields = self.backend_settings(backend)
            values = {f.name: f.default for f in fields.values() if f.default is not None}
            values.update(BUILTIN_DEFAULTS[kind])
            for layer in (defaults, kind_defaults):
                values.update({k: v for k, v in layer.items() if k in fields})
            values["backend"] = backend
            if isinstance(values.get("format"), str):  # a built-in default, not yet a list
                values["format"] = [values["format"]]
            glob, kinds = self.overrides
            overrides = {k: v for layer in (glob, kinds.get(kind, {})) for k, v in layer.items() if k in fields}
            settings = {f.name: f.default for f in settings_fields.values() if f.default is not None}
            for layer in (defaults, kind_defaults, voice or {}):
                own = layer is voice
                settings.update({k: v for k, v in layer.items() if k in settings_fields and (own or k not in fields)})
            self._entry_bases[memo] = (fields, settings_fields, settings_fields | fields,
                                       [f for f in fields.values() if f.required], values, overrides, settings)
        return self._entry_bases[memo]

    def dialogue(self, asset_id: str, where: str, values: dict[str, Any], settings: dict[str, Any],
                 voice: dict[str, Any] | None, voice_name: str | None, backend: str,
                 given: dict[str, Any]) -> list[Asset]:
        """One asset per locale (or one, without locales)."""
        from ..speech.script import check_ssml, matching_entries

        text = values["text"]
        if not self.locales:
            if isinstance(text, dict):
                self.problem(where, "is a table by locale, but [project] has no `locales`", "text")
                return []
            texts: dict[str | None, tuple[str, str | None]] = {None: (text, None)}
        else:
            given = {self.locales[0]: text} if isinstance(text, str) else dict(text)
            unknown = [loc for loc in given if loc not in self.locales]
            for loc in unknown:
                self.problem(where, f"has text for locale '{loc}', which is not in [project] locales "
                             f"({', '.join(self.locales)})" + did_you_mean(loc, self.locales), "text")
            if unknown:
                return []
            texts = {}
            for loc in self.locales:
                if loc in given:
                    texts[loc] = (given[loc], None)
                    continue
                source = next((lo for lo in self.locales if lo in given), None)
                if self.missing_locale == "fallback" and source is not None:
                    texts[loc] = (given[source], source)
                    self.warnings.append(Problem(self.file, where, f"no '{loc}' text: using the '{source}' line "
                                                 "in its place (missing_locale = \"fallback\")", "text"))
                else:
                    self.problem(where, f"has no text for locale '{loc}' (add it, or set "
                                 "missing_locale = \"fallback\" in [project])", "text")
            if len(texts) < len(self.locales):
                return []
        if values.get("ssml"):
            issues = [(lang, check_ssml(line)) for lang, (line, _) in texts.items()]
            for lang, issue in issues:
                if issue:
                    self.problem(where, issue + (f" (locale '{lang}')" if lang else ""), "text")
            if any(issue for _, issue in issues):
                return []
        seed = values.get("seed")
        seed = seed if seed is not None else derive_seed(asset_id)
        out = []
        for lang, (line, source) in texts.items():
            loc_settings = dict(settings)
            speak_in = source or lang
            if voice and speak_in:  # the voice's settings for this language, under the entry's own
                overlay = voice.get("locales", {}).get(speak_in, {})
                loc_settings.update({k: v for k, v in overlay.items() if k not in given})
            out.append(Asset(
                id=f"{lang}/{asset_id}" if lang else asset_id, kind="dialogue", entry_id=asset_id, take=None,
                backend=backend, seed=seed, values={**values, "text": line}, settings=loc_settings,
                voice=voice_name, where=where + (f" ({lang})" if lang else ""), locale=lang,
                lexicon=matching_entries(line, self.lexicon), fallback_from=source))
        return out
