"""Exports the packaged all-MiniLM-L6-v2 to ONNX for the ONNX Runtime backend, from the local weights only.

Runs in its own process (`python -m src.adapters.embeddings.onnx_export TARGET [--int8]`) so torch never loads
into a server that embeds with ONNX Runtime. The graph gets BERT's attention fusions; `--int8` then quantises
the weights to 8 bits per channel, with the reduced range that avoids overflow on CPUs without VNNI."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from src.adapters.embeddings.local_minilm import model_folder

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def export(target: Path, int8: bool) -> None:
    import torch
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    folder = model_folder()
    bert = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    config = bert.config

    class Encoder(torch.nn.Module):  # positional inputs and one output, as the exporter wants them
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    sample = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)(
        ["a short one", "and a somewhat longer second sentence"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        plain, fused, final = Path(work) / "plain.onnx", Path(work) / "fused.onnx", Path(work) / "final.onnx"
        torch.onnx.export(Encoder(), tuple(sample[name] for name in INPUTS), str(plain), input_names=INPUTS,
                          output_names=["hidden"], opset_version=17, dynamo=False,
                          dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "hidden"]})
        optimize_model(str(plain), model_type="bert", num_heads=config.num_attention_heads,
                       hidden_size=config.hidden_size).save_model_to_file(str(fused))
        if int8:
            quantize_dynamic(str(fused), str(final), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, extra_options={"DefaultTensorType": TensorProto.FLOAT})
        else:
            fused.rename(final)
        os.replace(final, target)  # whole or not at all: another process may be waiting for this file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--int8", action="store_true")
    arguments = parser.parse_args()
    export(arguments.target, arguments.int8)


if __name__ == "__main__":
    main()
