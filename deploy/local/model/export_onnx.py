#!/usr/bin/env python3
"""Build the local embedding model directory from the packaged safetensors.

Turns all-MiniLM-L6-v2 (BERT, 6 layers, 384 hidden, 12 heads) into an ONNX graph
using only onnx + numpy + safetensors (no torch), proves the graph equals a plain
numpy forward pass of the same weights, and writes the files kb-embed loads:

  model.onnx       inputs input_ids / attention_mask / token_type_ids (int64, [batch, seq]),
                   output last_hidden_state (float32, [batch, seq, 384])
  tokenizer.json   the shipped tokenizer with truncation 256 and padding to the longest
  kb-model.json    name, dimensions, max_tokens, pooling, normalize
  reference.json   a few sentences with their token ids and numpy embeddings, so the
                   Rust side can prove it reproduces the reference end to end

The attention is written the way an eager PyTorch export looks (MatMul, Div, Add mask,
Softmax, MatMul) because ONNX Runtime's graph optimizer fuses that pattern into its
Attention kernel, which is markedly faster than an SDPA-style export.

Usage: export_onnx.py WEIGHTS_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from safetensors.numpy import load_file

MODEL_NAME = "all-minilm-l6-v2"
HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
LN_EPS = 1e-12
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
OPSET = 17  # first opset with LayerNormalization
# Same additive mask value the eager PyTorch BERT uses for padded keys.
MASK_MIN = float(np.finfo(np.float32).min)

REFERENCE_SENTENCES = [
    "The cat sits on the mat.",
    "A quick brown fox jumps over the lazy dog, twice!",
    "Postgres mirrors the knowledge graph with pgvector embeddings.",
]


# ---------------------------------------------------------------- numpy reference


def _layer_norm(x, w, b):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * w + b


def _erf(x):
    # numpy has no erf; math.erf per element is exact enough and this runs on tiny inputs.
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x)


def numpy_forward(w, ids, mask, tt):
    """Plain BERT encoder in float64: the ground truth the graph is checked against."""
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
    seq = ids.shape[1]
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
        + w["embeddings.token_type_embeddings.weight"][tt]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    add_mask = (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e30
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def lin(t, name):
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def heads(t):
            return t.reshape(t.shape[0], seq, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)

        q = heads(lin(x, "attention.self.query"))
        k = heads(lin(x, "attention.self.key"))
        v = heads(lin(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD_DIM) + add_mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _layer_norm(
            lin(ctx, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
        x = _layer_norm(
            lin(h, "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def mean_pool_normalize(hidden, mask):
    m = mask[..., None].astype(np.float64)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


# ---------------------------------------------------------------- ONNX graph


class GraphBuilder:
    def __init__(self):
        self.nodes = []
        self.inits = []
        self._n = 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, w, prefix):
        # torch stores [out, in]; the graph wants x @ W^T, so store W^T once.
        wt = self.const(prefix + ".weight", w[prefix + ".weight"].T.copy())
        b = self.const(prefix + ".bias", w[prefix + ".bias"])
        return self.op("Add", [self.op("MatMul", [x, wt]), b])

    def layer_norm(self, x, w, prefix):
        scale = self.const(prefix + ".weight", w[prefix + ".weight"])
        bias = self.const(prefix + ".bias", w[prefix + ".bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=LN_EPS)


def build_graph(w):
    g = GraphBuilder()
    g.const("c_heads_shape", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    g.const("c_hidden_shape", np.array([0, 0, HIDDEN], np.int64))
    g.const("c_sqrt_dh", np.array(np.sqrt(HEAD_DIM), np.float32))
    g.const("c_one", np.array(1.0, np.float32))
    g.const("c_half", np.array(0.5, np.float32))
    g.const("c_sqrt2", np.array(np.sqrt(2.0), np.float32))
    g.const("c_mask_min", np.array(MASK_MIN, np.float32))
    g.const("c_axis1", np.array([1], np.int64))
    g.const("c_axis2", np.array([2], np.int64))
    g.const("c_i0", np.array(0, np.int64))
    g.const("c_i1", np.array(1, np.int64))

    # Embeddings: word + position(0..seq) + token type, then LayerNorm.
    word = g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"])
    pos = g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    typ = g.const("embeddings.token_type_embeddings.weight", w["embeddings.token_type_embeddings.weight"])
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), "c_i1"], axis=0)
    pos_ids = g.op("Range", ["c_i0", seq_len, "c_i1"])
    x = g.op("Add", [g.op("Gather", [word, "input_ids"]), g.op("Gather", [pos, pos_ids])])
    x = g.op("Add", [x, g.op("Gather", [typ, "token_type_ids"])])
    x = g.layer_norm(x, w, "embeddings.LayerNorm")

    # Additive key mask [batch, 1, 1, seq]: 0 for tokens, MASK_MIN for padding.
    m = g.op("Unsqueeze", [g.op("Unsqueeze", ["attention_mask", "c_axis1"]), "c_axis2"])
    m = g.op("Cast", [m], to=TensorProto.FLOAT)
    add_mask = g.op("Mul", [g.op("Sub", ["c_one", m]), "c_mask_min"])

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q = g.op("Reshape", [g.linear(x, w, p + "attention.self.query"), "c_heads_shape"])
        k = g.op("Reshape", [g.linear(x, w, p + "attention.self.key"), "c_heads_shape"])
        v = g.op("Reshape", [g.linear(x, w, p + "attention.self.value"), "c_heads_shape"])
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("Div", [g.op("MatMul", [q, k]), "c_sqrt_dh"])
        probs = g.op("Softmax", [g.op("Add", [scores, add_mask])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, "c_hidden_shape"])
        attn = g.linear(ctx, w, p + "attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn, x]), w, p + "attention.output.LayerNorm")

        h = g.linear(x, w, p + "intermediate.dense")
        # Exact (erf) GELU, as BERT was trained with; ORT fuses this into its Gelu kernel.
        gelu = g.op("Add", [g.op("Erf", [g.op("Div", [h, "c_sqrt2"])]), "c_one"])
        h = g.op("Mul", [g.op("Mul", [h, gelu]), "c_half"])
        out = g.linear(h, w, p + "output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), w, p + "output.LayerNorm")

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    def int_input(name):
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        g.nodes,
        "all_minilm_l6_v2",
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="kb-mirror deploy/local/model/export_onnx.py",
    )
    model.ir_version = 8  # opset 17's IR; readable by every supported ONNX Runtime
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------- tokenizer


def configure_tokenizer(tok):
    """The shipped file truncates and pads to 128; the model was trained to 256."""
    tok["truncation"] = {
        "direction": "Right",
        "max_length": MAX_TOKENS,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    pad = tok.get("padding") or {}
    tok["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": pad.get("pad_id", 0),
        "pad_type_id": pad.get("pad_type_id", 0),
        "pad_token": pad.get("pad_token", "[PAD]"),
    }
    return tok


def wordpiece_ids(text, vocab):
    """Minimal BERT uncased tokenizer for the plain ASCII reference sentences only."""
    pieces = []
    for word in text.lower().split():
        cur = ""
        for ch in word:
            if ch.isalnum():
                cur += ch
            else:
                if cur:
                    pieces.append(cur)
                pieces.append(ch)
                cur = ""
        if cur:
            pieces.append(cur)
    ids = [vocab["[CLS]"]]
    for piece in pieces:
        start, sub = 0, []
        while start < len(piece):
            end = len(piece)
            while end > start:
                cand = piece[start:end] if start == 0 else "##" + piece[start:end]
                if cand in vocab:
                    sub.append(vocab[cand])
                    break
                end -= 1
            if end == start:
                sub = [vocab["[UNK]"]]
                break
            start = end
        ids.extend(sub)
    ids.append(vocab["[SEP]"])
    return ids


def padded_batch(seqs):
    width = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), width), np.int64)
    mask = np.zeros((len(seqs), width), np.int64)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    return ids, mask, np.zeros_like(ids)


# ---------------------------------------------------------------- main


def main(weights_dir, out_dir):
    weights_dir, out_dir = Path(weights_dir), Path(out_dir)
    w = load_file(str(weights_dir / "model.safetensors"))
    tok = json.loads((weights_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]

    model = build_graph(w)

    # Prove the graph: run it with ONNX's reference evaluator on a padded batch (so the
    # mask path is exercised) and compare with the independent numpy forward pass.
    seqs = [wordpiece_ids(s, vocab) for s in REFERENCE_SENTENCES]
    ids, mask, tt = padded_batch(seqs)
    expected = numpy_forward(w, ids, mask, tt)
    (got,) = ReferenceEvaluator(model).run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}
    )
    valid = mask.astype(bool)
    diff = float(np.abs(got[valid] - expected[valid]).max())
    print(f"export check: max |onnx - numpy| over {int(valid.sum())} tokens = {diff:.2e}")
    if not diff < 1e-4:
        sys.exit(f"exported graph disagrees with the numpy forward pass (max abs diff {diff})")

    vectors = mean_pool_normalize(expected, mask)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out_dir / "model.onnx"))
    (out_dir / "tokenizer.json").write_text(
        json.dumps(configure_tokenizer(tok), ensure_ascii=False), encoding="utf-8"
    )
    meta = {
        "name": MODEL_NAME,
        "dimensions": HIDDEN,
        "max_tokens": MAX_TOKENS,
        "pooling": "mean",
        "normalize": True,
    }
    (out_dir / "kb-model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    reference = {
        "note": "numpy float64 forward pass of the same weights; mean pooled, L2 normalized",
        "max_abs_diff_onnx_vs_numpy": diff,
        "items": [
            {"text": t, "token_ids": s, "embedding": [round(float(x), 7) for x in vec]}
            for t, s, vec in zip(REFERENCE_SENTENCES, seqs, vectors)
        ],
    }
    (out_dir / "reference.json").write_text(json.dumps(reference) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_onnx.py WEIGHTS_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
