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

SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def main():
    src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def rd_str():
            return f.read(rd("Q")).decode("utf-8")

        assert f.read(4) == b"GGUF", "not a GGUF file"
        version = rd("I")
        n_tensors, n_kv = rd("Q"), rd("Q")
        kv_start = f.tell()
        alignment = 32
        for _ in range(n_kv):
            key, t = rd_str(), rd("I")
            if key == "clip.vision.feature_layer":
                sys.exit(f"{src} already has clip.vision.feature_layer")
            if t == 8:
                f.seek(rd("Q"), 1)
            elif t == 9:
                et, n = rd("I"), rd("Q")
                if et == 8:
                    for _ in range(n):
                        f.seek(rd("Q"), 1)
                else:
                    f.seek(n * SCALAR[et], 1)
            else:
                v = f.read(SCALAR[t])
                if key == "general.alignment":
                    alignment = struct.unpack("<I", v)[0]
        kv_end = f.tell()
        for _ in range(n_tensors):
            f.seek(rd("Q"), 1)
            f.seek(8 * rd("I") + 4 + 8, 1)
        ti_end = f.tell()
        data_start = (ti_end + alignment - 1) // alignment * alignment
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
