"""A corpus of malformed manifests: each exits 2 with a clear message, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GOOD_LINE = '[[dialogue]]\nid = "a"\ntext = "Hello."\n'

# (name, manifest text, substrings expected in stderr)
CASES = [
    ("syntax error", '[[dialogue]\nid = "a"\n', ["TOML syntax error", "line 1"]),
    ("unterminated string", '[[dialogue]]\nid = "a\ntext = "x"\n', ["TOML syntax error"]),
    ("unknown top-level key", 'sounds = 1\n' + GOOD_LINE, ["unknown top-level key", "'sounds'"]),
    ("unknown entry key with hint", '[[dialogue]]\nid = "a"\ntxt = "Hi"\n',
     ['dialogue "a"', "'txt' unknown key (did you mean 'text'?)"]),
    ("missing text", '[[dialogue]]\nid = "a"\n', ['dialogue "a"', "'text' is required"]),
    ("empty text", '[[dialogue]]\nid = "a"\ntext = "  "\n', ["'text' must not be empty"]),
    ("wrong type", '[[ambience]]\nid = "a"\nprompt = "rain"\nduration = "long"\n',
     ['ambience "a"', "'duration' expected a number"]),
    ("negative duration", '[[ambience]]\nid = "a"\nprompt = "rain"\nduration = -3\n',
     ["'duration' must be greater than 0"]),
    ("duration too long", '[[music]]\nid = "a"\nprompt = "calm"\nduration = 601\n', ["'duration' must be at most 600"]),
    ("loop not bool", '[[music]]\nid = "a"\nprompt = "calm"\nloop = "yes"\n', ["'loop' expected true or false"]),
    ("missing prompt", '[[sfx]]\nid = "a"\n', ['sfx "a"', "'prompt' is required"]),
    ("duplicate id", GOOD_LINE + GOOD_LINE, ["duplicate id 'a'"]),
    ("duplicate id across kinds, case", GOOD_LINE + '[[sfx]]\nid = "A"\nprompt = "coin"\n', ["duplicate id 'A'"]),
    ("variation id collides", '[[sfx]]\nid = "coin"\nprompt = "coin"\nvariations = 2\n'
     '[[sfx]]\nid = "coin_02"\nprompt = "coin"\n', ["duplicate id 'coin_02'"]),
    ("path traversal id", '[[dialogue]]\nid = "../x"\ntext = "Hi"\n', ["dialogue #1", "not a safe file name"]),
    ("slash in id", '[[dialogue]]\nid = "a/b"\ntext = "Hi"\n', ["not a safe file name"]),
    ("windows reserved id", '[[dialogue]]\nid = "CON"\ntext = "Hi"\n', ["reserved file name on Windows"]),
    ("windows reserved id lower", '[[sfx]]\nid = "com1"\nprompt = "blip"\n', ["reserved file name on Windows"]),
    ("missing id", '[[dialogue]]\ntext = "Hi"\n', ["dialogue #1", "'id' is required"]),
    ("id not a string", '[[dialogue]]\nid = 3\ntext = "Hi"\n', ["'id' expected a string"]),
    ("unknown backend", '[[dialogue]]\nid = "a"\ntext = "Hi"\nbackend = "espek"\n',
     ["unknown backend 'espek'", "did you mean 'espeak'"]),
    ("backend wrong kind", '[[sfx]]\nid = "a"\nprompt = "coin"\nbackend = "espeak"\n', ["cannot generate sfx"]),
    ("unknown voice", '[voices.narrator]\nbackend = "espeak"\n[[dialogue]]\nid = "a"\ntext = "Hi"\nvoice = "narator"\n',
     ["unknown voice 'narator'", "did you mean 'narrator'"]),
    ("bad voice setting", '[voices.n]\nbackend = "espeak"\nrate = 5000\n' + GOOD_LINE,
     ["[voices.n]", "'rate' must be at most"]),
    ("unknown voice key", '[voices.n]\nbackend = "espeak"\npich = 40\n' + GOOD_LINE, ["did you mean 'pitch'"]),
    ("unknown emotion", '[[dialogue]]\nid = "a"\ntext = "Hi"\nemotion = "grumpy"\n',
     ["'emotion' expected one of", "whisper"]),
    ("bad format", '[[sfx]]\nid = "a"\nprompt = "coin"\nformat = "mp3"\n', ["'format' expected one of"]),
    ("bad sample rate", '[project]\nsample_rate = 12345\n' + GOOD_LINE, ["[project]", "'sample_rate'"]),
    ("opus at 44.1k", '[project]\nsample_rate = 44100\n[[sfx]]\nid = "a"\nprompt = "coin"\nformat = "opus"\n',
     ["opus needs"]),
    ("entries not an array", '[dialogue]\nid = "a"\n', ["expected an array of tables"]),
    ("bad defaults key", '[defaults]\nloudnes = -20\n' + GOOD_LINE, ["[defaults]", "did you mean 'loudness'"]),
    ("bad kind defaults key", '[defaults.dialogue]\nprompt = "x"\n' + GOOD_LINE, ["[defaults.dialogue]", "'prompt'"]),
    ("loudness out of range", '[[sfx]]\nid = "a"\nprompt = "coin"\nloudness = 10\n', ["'loudness' must be at most 0"]),
    ("seed negative", '[[sfx]]\nid = "a"\nprompt = "coin"\nseed = -1\n', ["'seed' must be at least 0"]),
    ("variations zero", '[[sfx]]\nid = "a"\nprompt = "coin"\nvariations = 0\n', ["'variations' must be at least 1"]),
    ("not utf-8", b'[[dialogue]]\nid = "a"\ntext = "caf\xe9"\n', ["not UTF-8"]),
]


def run_cli(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "assetbuild", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("name,text,expected", CASES, ids=[c[0] for c in CASES])
def test_malformed_manifest(tmp_path, name, text, expected):
    path = tmp_path / "assetbuild.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli(["build", str(path)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr  # names the file
    for part in expected:
        assert part in proc.stderr, f"{part!r} not in:\n{proc.stderr}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert proc.stdout == ""


def test_every_problem_is_reported(tmp_path):
    path = tmp_path / "assetbuild.toml"
    path.write_text('[[dialogue]]\nid = "a"\ntxt = "x"\n[[sfx]]\nid = "CON"\nprompt = "coin"\n'
                    '[[music]]\nid = "m"\nprompt = "calm"\nduration = -1\n')
    proc = run_cli(["build", str(path)], tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) >= 4, proc.stderr  # unknown key, missing text, reserved id, duration
    assert "problems; nothing was built" in proc.stderr


def test_missing_manifest(tmp_path):
    proc = run_cli(["build", "nope.toml"], tmp_path)
    assert proc.returncode == 2
    assert "no such manifest" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_command_suggests(tmp_path):
    proc = run_cli(["buidl"], tmp_path)
    assert proc.returncode == 2
    assert "Did you mean 'build'" in proc.stderr
