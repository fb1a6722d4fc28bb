"""The import rules of docs/architecture.md, checked by walking every module's imports with ast.

Data flows one way (manifest -> plan -> generate -> process -> export): the lower layers never
import the pipeline that drives them, the manifest package asks for the backends only when it
validates, and the shared helpers import nothing above them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "assetbuild"

SHARED = {"errors", "fields", "fsutil", "records", "timeline"}
FRONT = {"cli", "watch", "server", "progress", "starter", "__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported assetbuild module, at module level) for every import in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = set()
    for node in tree.body:  # module level, including under `if TYPE_CHECKING:` and try/except
        top_level.add(node)
        if isinstance(node, (ast.If, ast.Try)):
            top_level.update(ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out += [(t, node in top_level) for t in targets if t == "assetbuild" or t.startswith("assetbuild.")]
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = {name: _imports(name, path) for name, path in _modules().items()}


def _violations(rule) -> list[str]:
    return [f"{src} imports {dst}" + ("" if top else " (in a function)")
            for src, imports in GRAPH.items() for dst, top in imports if rule(_layer(src), _layer(dst), top)]


def test_the_graph_is_walked():
    assert len(GRAPH) > 80
    assert ("assetbuild.pipeline.plan", True) in GRAPH["assetbuild.pipeline.realise"]  # a relative import


def test_lower_layers_never_import_the_pipeline_or_the_front_ends():
    lower = {"manifest", "audio", "speech", "export", "backends", "models"} | SHARED
    assert _violations(lambda src, dst, top: src in lower and dst in {"pipeline"} | FRONT) == []


def test_the_manifest_package_asks_for_backends_only_when_validating():
    assert _violations(lambda src, dst, top: src == "manifest" and dst == "backends" and top) == []


def test_backends_and_models_do_not_import_the_manifest_or_exports():
    assert _violations(lambda src, dst, top: src in {"backends", "models"} and dst in {"manifest", "export"}) == []


def test_audio_and_speech_are_leaves_above_the_shared_helpers():
    assert _violations(lambda src, dst, top: src in {"audio", "speech"}
                       and dst not in SHARED | {"audio", "speech"}) == []


def test_shared_helpers_import_only_each_other():
    assert _violations(lambda src, dst, top: src in SHARED and dst not in SHARED) == []


def test_the_pipeline_does_not_import_the_front_ends():
    assert _violations(lambda src, dst, top: src == "pipeline" and dst in FRONT) == []


def test_only_the_executor_reaches_into_a_process_pool():
    hits = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        for word in ("_processes", "_broken", "_heavy_batch", "_unload_all"):
            if word in text and name != "assetbuild.pipeline.executor":
                hits.append(f"{name}: {word}")
    assert hits == []


@pytest.mark.parametrize("module, banned", [
    ("assetbuild.backends.base", ("assetbuild.pipeline", "assetbuild.manifest")),
    ("assetbuild.manifest", ("assetbuild.pipeline", "assetbuild.backends")),
    ("assetbuild.export.metadata", ("assetbuild.pipeline", "assetbuild.backends")),
])
def test_importing_a_lower_layer_loads_nothing_above_it(module, banned):
    code = f"import sys, {module}\nprint('\\n'.join(sorted(m for m in sys.modules if m.startswith('assetbuild'))))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT.parent)))
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert module in loaded and not [m for m in loaded if m.startswith(banned)], loaded


def test_the_linter_and_the_type_checker_see_every_package_folder():
    """A folder a tool skips by default (ruff skips `build` and `dist`, as black does) would go
    unchecked without anyone noticing: both checks must list every module of the package."""
    root = ROOT.parent
    ours = {str(p.relative_to(root)) for p in ROOT.rglob("*.py")}
    linted = subprocess.run(["ruff", "check", "--show-files", "."], cwd=root, capture_output=True, text=True,
                            timeout=120).stdout.split()
    assert ours <= {str(Path(f).relative_to(root)) for f in linted if f.endswith(".py")}
    import tomllib

    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert config["tool"]["mypy"]["files"] == ["assetbuild"] and "exclude" not in config["tool"]["mypy"]
