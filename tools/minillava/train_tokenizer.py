#!/usr/bin/python3
"""Trains MiniLLaVA's SentencePiece tokenizer with Debian's spm_train.

The corpus is the LLaVA-1.5 prompt (system prompt, roles) plus every question and
answer of OUT/train.json. Settings follow LLaMA's tokenizer: BPE, byte fallback,
split digits, identity normalisation, unk 0 / bos 1 / eos 2, no pad piece.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from template import SYSTEM  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="dataset directory (reads train.json)")
    ap.add_argument("--out", required=True, help="output prefix (writes PREFIX.model and PREFIX.vocab)")
    ap.add_argument("--vocab-size", type=int, default=640)
    a = ap.parse_args()
    with open(os.path.join(a.data, "train.json")) as f:
        records = json.load(f)
    corpus = a.out + ".corpus.txt"
    with open(corpus, "w") as f:
        for r in records:
            f.write(f"{SYSTEM} USER: ASSISTANT:\n")
            for turn in r["conversations"]:
                # spm_train reads one sentence per line; newlines become byte pieces.
                for line in turn["value"].replace("<image>", "").split("\n"):
                    if line.strip():
                        f.write(line + "\n")
    cmd = ["spm_train", f"--input={corpus}", f"--model_prefix={a.out}", f"--vocab_size={a.vocab_size}",
           "--model_type=bpe", "--byte_fallback=true", "--split_digits=true", "--unk_id=0", "--bos_id=1",
           "--eos_id=2", "--pad_id=-1", "--add_dummy_prefix=true", "--remove_extra_whitespaces=false",
           "--normalization_rule_name=identity", "--character_coverage=1.0", "--num_threads=1",
           "--input_sentence_size=2000000", "--shuffle_input_sentence=false", "--minloglevel=1"]
    subprocess.run(cmd, check=True)
    os.remove(corpus)
    print(f"wrote {a.out}.model")


if __name__ == "__main__":
    main()
