from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMALL = """\
[project]
name = "small"

[voices.guide]
backend = "espeak"
voice = "en-us"

[[dialogue]]
id = "line_01"
voice = "guide"
text = "Welcome to the forest."

[[dialogue]]
id = "line_02"
voice = "guide"
text = "Follow the lanterns."
emotion = "whisper"

[[ambience]]
id = "wind"
prompt = "gentle wind"
duration = 3
loop = true

[[sfx]]
id = "coin"
prompt = "coin pickup"
variations = 2
"""


# No test touches the network: hub libraries stay offline, no proxy is used, and every Python
# process (this one and the builds and servers tests start) loads tests/netguard, which refuses
# and logs any connection or name lookup outside loopback; `no_network` fails the test that did.
NET_LOG = Path(os.environ.setdefault("ASSETBUILD_NET_LOG", str(Path(
    os.environ.get("TMPDIR", "/tmp")) / f"assetbuild-net-{os.getpid()}.log")))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests" / "netguard"),
                                                         os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(REPO / "tests" / "netguard"))
import sitecustomize  # noqa: E402,F401  (the guard, in this process too)


@pytest.fixture(autouse=True)
def no_network():
    before = NET_LOG.read_text() if NET_LOG.exists() else ""
    yield
    after = NET_LOG.read_text() if NET_LOG.exists() else ""
    assert after == before, "network access outside loopback attempted: " + after[len(before):]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ASSETBUILD_NO_SKIPS=1 (set by .ci/run, which installs every test prerequisite), a
    skipped test fails: a tool that should be there and is not must not pass as coverage."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("ASSETBUILD_NO_SKIPS") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but ASSETBUILD_NO_SKIPS=1: {report.longrepr}"


def plugin_site(root: Path, module: str, source: str, backends: dict[str, str]) -> dict[str, str]:
    """A folder with a backend plugin: ``module``.py holding ``source``, registered under the
    `assetbuild.backends` entry-point group (``backends``: name -> "module:Class"). Returns the
    environment for ``Project.run`` that puts it on the path."""
    site = root / "site"
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[assetbuild.backends]\n" + "".join(f"{name} = {target}\n" for name, target in backends.items()))
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}


class Project:
    """A temp project driven through the real CLI in a subprocess."""

    def __init__(self, root: Path, text: str = SMALL):
        self.root = root
        self.manifest = root / "assetbuild.toml"
        self.manifest.write_text(text)
        self.out = root / "build" / "audio"

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, **(env or {}))
        proc = subprocess.run([sys.executable, "-m", "assetbuild", *args], cwd=self.root, capture_output=True,
                              text=True, env=full_env, timeout=300)
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def build(self, *args: str, expect: int = 0) -> dict:
        proc = self.run("build", str(self.manifest), "--json", *args)
        assert proc.returncode == expect, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        return json.loads(proc.stdout)

    def pack(self) -> dict:
        return json.loads((self.out / "assetpack.json").read_text())

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text
        self.manifest.write_text(text.replace(old, new))


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


LOCALISED = """\
[project]
name = "castle"
version = "2.1.0"
locales = ["en", "fr"]

[voices.guard]
backend = "espeak"

[[dialogue]]
id = "halt"
voice = "guard"
speaker = "Guard"
text = { en = "Halt! Who goes there? State your name, traveller.", fr = "Halte ! Qui va là ?" }

[[dialogue]]
id = "pass"
voice = "guard"
speaker = "Guard"
text = { en = "You may pass.", fr = "Vous pouvez passer." }

[[ambience]]
id = "hall"
prompt = "castle hall room tone"
duration = 4
loop = true

[[music]]
id = "fanfare"
prompt = "short brass fanfare"
duration = 3

[[sfx]]
id = "door"
prompt = "heavy wooden door"
variations = 2
"""


def _built(root: Path, manifest_text: str) -> Path:
    p = Project(root, manifest_text)
    p.build()
    return p.out


@pytest.fixture(scope="session")
def forest_out(tmp_path_factory) -> Path:
    """The forest example built once per session; its output folder (treat as read-only)."""
    root = tmp_path_factory.mktemp("forest")
    return _built(root, (REPO / "examples" / "forest" / "assetbuild.toml").read_text())


@pytest.fixture(scope="session")
def localised_out(tmp_path_factory) -> Path:
    """A small en/fr project (dialogue, a loop, music, sfx takes) built once; its output folder."""
    return _built(tmp_path_factory.mktemp("castle"), LOCALISED)
