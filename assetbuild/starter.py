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

# A voice: a backend plus its settings (see `assetbuild backends`).
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
