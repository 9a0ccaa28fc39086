#!/usr/bin/python3
"""Exports a MiniLLaVA checkpoint in llava-hf layout, plus goldens for the engine test.

OUT/config.json               LlavaForConditionalGeneration config (vision_config / text_config)
OUT/preprocessor_config.json  CLIPImageProcessor at 168 px
OUT/model.safetensors         F16 weights, llava-hf tensor names
OUT/tokenizer.model           the SentencePiece model
OUT/demo.png, OUT/demo.json   a test image, its question and the expected answer
OUT/golden_*.png              further test images for the goldens
OUT/golden.safetensors        PyTorch float32 results computed from the F16-rounded weights:
                              <case>.input_ids, <case>.image_features (projector output),
                              <case>.logits_last, <case>.greedy_ids; demo.pixel_values
OUT/golden.json               the cases (image, question, answer, tensor names)
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentencepiece as spm  # noqa: E402
from model import CLIP_MEAN, CLIP_STD, MiniLlava, pixels_from_image  # noqa: E402
from template import EOS, inference_ids  # noqa: E402

DTYPES = {np.float16: "F16", np.float32: "F32", np.int64: "I64"}


def write_safetensors(path, tensors):
    """tensors: ordered dict name -> numpy array (F16/F32/I64), written little-endian."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype.type], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_config(cfg):
    v, t = cfg["vision"], cfg["text"]
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": cfg["image_token_index"],
        "pad_token_id": cfg["pad_token_id"],
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "text_config": {
            "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": cfg["vocab_size"],
            "hidden_size": t["hidden_size"], "intermediate_size": t["intermediate_size"],
            "num_hidden_layers": t["num_hidden_layers"], "num_attention_heads": t["num_attention_heads"],
            "num_key_value_heads": t["num_attention_heads"], "hidden_act": "silu",
            # LLaVA's SQA setting asks for up to 1024 new tokens after a ~240-token prompt; rotary
            # embeddings have no table, so this only sets the engine's context limit.
            "max_position_embeddings": max(t["max_position_embeddings"], 2048), "rms_norm_eps": t["rms_norm_eps"],
            "rope_theta": t["rope_theta"], "rope_scaling": None, "attention_bias": False,
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": EOS, "pad_token_id": 0,
            "torch_dtype": "float16"},
        "vision_config": {
            "model_type": "clip_vision_model", "hidden_size": v["hidden_size"],
            "intermediate_size": v["intermediate_size"], "num_hidden_layers": v["num_hidden_layers"],
            "num_attention_heads": v["num_attention_heads"], "num_channels": 3, "image_size": v["image_size"],
            "patch_size": v["patch_size"], "hidden_act": "quick_gelu", "layer_norm_eps": v["layer_norm_eps"],
            "torch_dtype": "float16"},
    }


def preprocessor_config(size):
    return {"crop_size": {"height": size, "width": size}, "do_center_crop": True, "do_convert_rgb": True,
            "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": list(CLIP_MEAN),
            "image_processor_type": "CLIPImageProcessor", "image_std": list(CLIP_STD),
            "processor_class": "LlavaProcessor", "resample": 3, "rescale_factor": 1 / 255,
            "size": {"shortest_edge": size}}


@torch.no_grad()
def greedy(model, ids, pix, image_id, max_new=8):
    """Greedy decoding by recomputation; returns (logits after the prompt, new ids)."""
    seq = list(ids)
    first = None
    for _ in range(max_new):
        logits = model(torch.tensor([seq]), pix)[0, -1]
        if first is None:
            first = logits.clone()
        nxt = int(logits.argmax())
        seq.append(nxt)
        if nxt == EOS:
            break
    return first, seq[len(ids):]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="train.py checkpoint (last.pt)")
    ap.add_argument("--data", required=True, help="dataset directory (test images and questions)")
    ap.add_argument("--out", required=True, help="output directory (e.g. assets/minillava)")
    ap.add_argument("--cases", default="000003:gqa,000001:pope,000000:sqa",
                    help="golden cases: test image id and the benchmark whose question to ask")
    a = ap.parse_args()
    ck = torch.load(a.ckpt)
    cfg = ck["config"]
    model = MiniLlava(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    os.makedirs(a.out, exist_ok=True)
    # F16 weights; the goldens are computed from exactly these (widened to float32).
    tensors = {k: v.detach().to(torch.float16).numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(cfg["vision"]["image_size"]), f, indent=2)
        f.write("\n")
    shutil.copyfile(ck["tokenizer"], os.path.join(a.out, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=ck["tokenizer"])

    test = os.path.join(a.data, "test")
    questions = {}
    for bench, fname in (("gqa", "gqa_questions.jsonl"), ("pope", "pope_questions.jsonl")):
        with open(os.path.join(test, fname)) as f:
            for line in f:
                q = json.loads(line)
                questions[(bench, q["image"])] = q["text"]
    answers = {k: v["answer"] for k, v in json.load(open(os.path.join(test, "gqa_answers.json"))).items()}
    labels = {}
    for split in ("random", "popular", "adversarial"):
        with open(os.path.join(test, f"pope_labels_{split}.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                labels[r["question_id"]] = r["label"]
    sqa = {r["image"]: r for r in json.load(open(os.path.join(test, "llava_test_CQM-I.json")))}

    golden, cases = {}, []
    image_id = cfg["image_token_index"]
    for k, spec in enumerate(a.cases.split(",")):
        img_id, bench = spec.split(":")
        image = f"test_{img_id}.png"
        if bench == "gqa":
            question, expected = questions[("gqa", image)], answers[img_id]
        elif bench == "pope":
            question, expected = questions[("pope", image)], labels[int(img_id)]
        else:
            conv = sqa[image]["conversations"]
            question = conv[0]["value"].replace("<image>\n", "") + \
                "\nAnswer with the option's letter from the given choices directly."
            expected = conv[1]["value"]
        name = "demo" if k == 0 else f"case{k}"
        png = "demo.png" if k == 0 else f"golden_{name}.png"
        shutil.copyfile(os.path.join(a.data, "images", "test", image), os.path.join(a.out, png))
        img = Image.open(os.path.join(a.out, png))
        pix = pixels_from_image(img).unsqueeze(0)
        ids = inference_ids(sp, question, image_id)
        feats = model.multi_modal_projector(model.vision_tower.vision_model.features(pix))[0]
        logits, new_ids = greedy(model, ids, pix, image_id)
        # Ids past the tokenizer (image, pad, vocabulary padding) have no text, as in the engine.
        answer = sp.decode([i for i in new_ids if i != EOS and i < sp.get_piece_size()])
        golden[f"{name}.input_ids"] = np.array(ids, dtype=np.int64)
        if k == 0:  # one case's preprocessing output is enough to localise a mismatch
            golden[f"{name}.pixel_values"] = pix.numpy().astype(np.float32)
        golden[f"{name}.image_features"] = feats.detach().numpy().astype(np.float32)
        golden[f"{name}.logits_last"] = logits.numpy().astype(np.float32)
        golden[f"{name}.greedy_ids"] = np.array(new_ids, dtype=np.int64)
        cases.append({"name": name, "image": png, "question": question, "expected_answer": expected,
                      "pytorch_answer": answer, "source": f"{bench} test image {image}"})
        print(f"{name}: {question!r} -> {answer!r} (expected {expected!r})")
    write_safetensors(os.path.join(a.out, "golden.safetensors"), golden)
    with open(os.path.join(a.out, "golden.json"), "w") as f:
        json.dump({"compute": "PyTorch float32 from the F16 weights in model.safetensors",
                   "checkpoint_stage": ck.get("stage"), "checkpoint_step": ck.get("step"), "cases": cases},
                  f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "demo.json"), "w") as f:
        json.dump({"image": "demo.png", "question": cases[0]["question"], "answer": cases[0]["expected_answer"]},
                  f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f"exported to {a.out}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
