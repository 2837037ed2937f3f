#!/usr/bin/env python3
"""Build the int8 variant of the local embedding model from the fp32 one export_onnx.py wrote.

Dynamic quantization (ONNX Runtime's own tool): the weights of every MatMul become int8, one
scale per output channel; activations are quantized on the fly. Weights use 7 bits
(reduce_range): CPUs without VNNI multiply u8 by s8 in 16-bit sums that saturate at 8 bits.
The tokenizer, dimensions and pooling are the fp32 model's.

Checks before it writes anything: the int8 graph, run by the same ONNX Runtime the services
load, embeds the fp32 model's reference sentences within REQUIRED_COSINE of the numpy reference.
Its reference.json then holds the int8 vectors (kb-embed's tests compare against those).

Usage: quantize_onnx.py FP32_DIR OUT_DIR
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

SUFFIX = "-int8"
# Per sentence, int8 vs the fp32 numpy reference. Measured ≈ 0.99; retrieval quality is
# measured separately (make bench-retrieval), this only catches a broken graph.
REQUIRED_COSINE = 0.97


def embed(session, token_ids):
    width = max(len(s) for s in token_ids)
    ids = np.zeros((len(token_ids), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, s in enumerate(token_ids):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    (hidden,) = session.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main(fp32_dir, out_dir):
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    meta = json.loads((fp32_dir / "kb-model.json").read_text(encoding="utf-8"))
    reference = json.loads((fp32_dir / "reference.json").read_text(encoding="utf-8"))
    items = reference["items"]

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / "model.onnx"
        quantize_dynamic(
            str(fp32_dir / "model.onnx"),
            str(quantized),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(
            str(quantized), options, providers=["CPUExecutionProvider"]
        )
        vectors = embed(session, [i["token_ids"] for i in items])
        expected = np.array([i["embedding"] for i in items], dtype=np.float32)
        cosines = (vectors * expected).sum(1) / np.linalg.norm(expected, axis=1)
        print(f"int8 check: cosine to the fp32 reference min {cosines.min():.4f}")
        if not cosines.min() >= REQUIRED_COSINE:
            sys.exit(f"int8 graph is too far from fp32 (cosine {cosines.min():.4f})")
        shutil.copyfile(quantized, out_dir / "model.onnx")

    shutil.copyfile(fp32_dir / "tokenizer.json", out_dir / "tokenizer.json")
    meta["name"] = meta["name"] + SUFFIX
    (out_dir / "kb-model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out_dir / "reference.json").write_text(
        json.dumps(
            {
                "note": "ONNX Runtime run of the int8 graph; mean pooled, L2 normalized",
                "min_cosine_to_fp32_reference": round(float(cosines.min()), 6),
                "items": [
                    {
                        "text": i["text"],
                        "token_ids": i["token_ids"],
                        "embedding": [round(float(x), 7) for x in v],
                    }
                    for i, v in zip(items, vectors)
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: quantize_onnx.py FP32_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
