"""Export: writing audio files (with loop points) and the assetpack.json metadata."""
