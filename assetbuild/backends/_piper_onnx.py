"""A Piper voice's ONNX graph, rewritten so a take is reproducible and timed.

Piper voices are VITS models exported to ONNX. Two things in the exported graph stand in the
way of a build tool:

* **Noise.** The graph draws its noise with two ``RandomNormalLike`` nodes (the stochastic
  duration predictor's and the flow's). onnxruntime seeds them per session, and the
  generator state advances with each call, so the same line spoken twice differs, and no
  seed chosen by the caller reaches them. Each such node is replaced here by a slice of a new
  graph input ``noise_k`` (a flat float vector), reshaped to the shape the node would have
  drawn: ``Reshape(Slice(noise_k, 0, ReduceProd(Shape(x))), Shape(x))``. The caller fills the
  vectors from a generator seeded by the request, so a seed gives one take, in any process.
* **Timing.** The per-phoneme-id frame counts (the ``Ceil`` of the predicted durations) are
  an intermediate tensor; they are made a graph output, as piper's own
  ``patch_voice_with_alignment`` does, and give exact phoneme and word times.

The noise vectors must be at least as long as what the graph draws. The duration noise is
``2 x ids`` values; the flow noise depends on the number of frames, known only after the
durations are predicted, so a generous guess is made and, when it falls short (the graph then
fails on the shape), the call is repeated with a longer vector. The values are a prefix of
one seeded stream, so the longer vector starts with the same numbers and the take does not
depend on the guess.

onnxruntime runs with one thread per session: parallel builds use one worker process per
core, and a fixed thread count keeps the floating-point reduction order, so the bytes, fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest

# Values drawn per phoneme id in a first guess: the flow noise has (channels x frames) values,
# 192 channels in Piper's voices and a sentence rarely averages over 16 frames an id; a shortfall only costs a retry.
_GUESS_PER_ID = 192 * 16
_RETRIES = 4


class GraphError(InvalidRequest):
    """The file is not a Piper voice this module can rewrite (no durations, no noise nodes)."""

    def __init__(self, message: str):
        super().__init__("settings.voice", message)


@dataclass(frozen=True)
class Rewritten:
    model: bytes  # the serialised, rewritten graph
    noise_inputs: tuple[str, ...]  # names of the new noise inputs, in graph order
    durations: str  # name of the frame-count output
    has_sid: bool  # the graph takes a speaker id (multi-speaker voice)


def rewrite(path: str) -> Rewritten:
    """Load the voice at ``path`` and rewrite its noise and duration tensors (see module doc)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(path)
    graph = model.graph
    ceil = sorted({out for node in graph.node if node.op_type == "Ceil" for out in node.output})
    if len(ceil) != 1:
        raise GraphError(f"{path}: expected one duration (Ceil) tensor in the graph, found {len(ceil)}")
    durations = ceil[0]
    if not any(o.name == durations for o in graph.output):
        graph.output.append(helper.make_tensor_value_info(durations, TensorProto.FLOAT, None))

    noise_inputs: list[str] = []
    nodes = list(graph.node)
    del graph.node[:]
    for node in nodes:
        if node.op_type != "RandomNormalLike":
            graph.node.append(node)
            continue
        k = len(noise_inputs)
        name = f"noise_{k}"
        noise_inputs.append(name)
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["noise_len"]))
        p = f"/assetbuild/noise_{k}"
        graph.node.extend([
            helper.make_node("Shape", [node.input[0]], [f"{p}/shape"]),
            helper.make_node("ReduceProd", [f"{p}/shape"], [f"{p}/count"], keepdims=1),
            helper.make_node("Constant", [], [f"{p}/zero"],
                             value=helper.make_tensor(f"{p}/zero_value", TensorProto.INT64, [1], [0])),
            helper.make_node("Slice", [name, f"{p}/zero", f"{p}/count"], [f"{p}/flat"]),
            helper.make_node("Reshape", [f"{p}/flat", f"{p}/shape"], [node.output[0]], name=f"{p}/reshape"),
        ])
    if len(noise_inputs) != 2:
        raise GraphError(f"{path}: expected the two noise nodes of a VITS voice, found {len(noise_inputs)}")
    has_sid = any(i.name == "sid" for i in graph.input)
    return Rewritten(model.SerializeToString(), tuple(noise_inputs), durations, has_sid)


class Session:
    """One rewritten voice, loaded in onnxruntime (one thread)."""

    def __init__(self, path: str):
        import onnxruntime

        self.rewritten = rewrite(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 4  # only fatal: a short noise guess is retried, not an error to print
        self.session = onnxruntime.InferenceSession(self.rewritten.model, sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = [outputs[0], self.rewritten.durations]

    def run(self, ids: list[int], scales: tuple[float, float, float], seed: tuple[int, ...],
            speaker: int | None = None) -> tuple[Any, Any]:
        """(audio float32 (samples,), frames per id int64 (ids,)) for one utterance of phoneme ids.

        ``scales``: (noise_scale, length_scale, noise_w), as Piper's ``scales`` input; ``seed``:
        the words of the seed the noise streams are drawn from.
        """
        import numpy as np

        feed: dict[str, Any] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray(scales, dtype=np.float32),
        }
        if self.rewritten.has_sid:
            feed["sid"] = np.asarray([speaker or 0], dtype=np.int64)
        length = max(_GUESS_PER_ID * len(ids) * max(scales[1], 0.25), 4096)
        for attempt in range(_RETRIES + 1):
            for k, name in enumerate(self.rewritten.noise_inputs):
                feed[name] = noise(seed, k, int(length))
            try:
                audio, frames = self.session.run(self._outputs, feed)
                break
            except Exception as exc:  # onnxruntime raises its own (unexported) error types
                if attempt == _RETRIES or not _short_noise(exc):
                    raise
                length *= 4
        return np.asarray(audio, dtype=np.float32).reshape(-1), np.asarray(frames).reshape(-1).astype(np.int64)


def noise(seed: tuple[int, ...], k: int, length: int) -> Any:
    """``length`` standard normal values of stream ``k`` of ``seed``: a longer vector starts with
    the same values (numpy's Generator fills in order), so the length never changes a take."""
    import numpy as np

    words = [w & 0xFFFFFFFFFFFFFFFF for w in seed] + [k]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))
    return rng.standard_normal(length, dtype=np.float32)


def _short_noise(exc: Exception) -> bool:
    # The reshape of a too-short slice is what fails, and onnxruntime names the node.
    return "/assetbuild/noise_" in str(exc)
