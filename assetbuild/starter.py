"""The manifest `assetbuild init` writes."""

STARTER = '''#:schema ./.assetbuild/assetbuild.schema.json
# assetbuild manifest. Build with `assetbuild build`; reference: docs/manifest.md.

[project]
name = "{name}"
output = "build/audio"      # relative to this file
sample_rate = 48000

# Keys here apply to every entry; [defaults.KIND] to one kind. An entry's own keys win.
[defaults]
true_peak = -1.0            # dBTP ceiling

[defaults.dialogue]
loudness = -20.0            # LUFS

# A voice: a backend plus its settings (see `assetbuild backends`). espeak is built in: 100+
# languages, tiny and instant, but robotic. For natural speech: pip install "assetbuild[piper]",
# then backend = "piper" (its bundled voice is US English; more with `assetbuild models pull
# piper:NAME`, one per language and speaker). docs/backends.md says when to choose which.
[voices.narrator]
backend = "espeak"
voice = "en-gb"
rate = 160

[[dialogue]]
id = "hello_01"
voice = "narrator"
text = "Welcome, traveller. The road ahead is long."
emotion = "calm"

[[ambience]]
id = "wind_bed"
prompt = "gentle wind with distant birds"
duration = 20
loop = true

[[sfx]]
id = "coin"
prompt = "coin pickup"
variations = 3              # coin_01, coin_02, coin_03
'''
