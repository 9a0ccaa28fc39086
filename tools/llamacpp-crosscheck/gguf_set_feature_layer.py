#!/usr/bin/env python3
"""Copies an mmproj GGUF, adding `clip.vision.feature_layer = [K]` (int32 array; standard library only).

    gguf_set_feature_layer.py IN.gguf OUT.gguf K

An experiment, not a fix to ship: llama.cpp's LLaVA graph (tools/mtmd/models/llava.cpp) runs
`clip.vision.block_count - 1` blocks unless feature layers are given, and then runs up to the
deepest one listed. With K = block_count it runs every stored block, which is what Hugging Face's
`hidden_states[-2]` (and ficoco) computes from a file holding the blocks up to the feature layer.
Tensor data are copied unchanged (their offsets are relative to the data section).
"""
import struct
import sys

from gguf_header import GgufHeader


def main():
    src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        h = GgufHeader(f, src)
        if "clip.vision.feature_layer" in h.kv:
            sys.exit(f"{src} already has clip.vision.feature_layer")
        version, n_tensors, n_kv, alignment = h.version, h.n_tensors, h.n_kv, h.alignment
        kv_start, kv_end, ti_end, data_start = h.kv_start, h.kv_end, h.infos_end, h.data_start
        f.seek(kv_start)
        kvs = f.read(kv_end - kv_start)
        infos = f.read(ti_end - kv_end)
        key = b"clip.vision.feature_layer"
        new_kv = struct.pack("<Q", len(key)) + key + struct.pack("<IIQi", 9, 5, 1, k)
        head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv + 1) + kvs + new_kv + infos
        head += b"\0" * ((-len(head)) % alignment)
        f.seek(data_start)
        with open(dst, "wb") as out:
            out.write(head)
            while True:
                buf = f.read(1 << 24)
                if not buf:
                    break
                out.write(buf)


if __name__ == "__main__":
    main()
