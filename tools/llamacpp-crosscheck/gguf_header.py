"""The header of a GGUF file (version 3, little-endian): metadata and tensor infos, read with
the standard library only. Shared by compare.py and gguf_set_feature_layer.py."""
import struct

# Byte size and struct code of each scalar metadata type (8 = string, 9 = array).
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class GgufHeader:
    """Reads the header of an open binary file `f`. Attributes: version, n_tensors, n_kv,
    kv (key -> scalar value, or None for strings and arrays), kv_start/kv_end (byte range of
    the metadata), tensors (name -> (dims, ggml type, offset)), infos_end, alignment,
    data_start (where tensor offsets count from)."""

    def __init__(self, f, path=""):
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def rd_str():
            return f.read(rd("Q")).decode("utf-8", "replace")

        def value(t):
            if t == 8:
                f.seek(rd("Q"), 1)
            elif t == 9:
                et, n = rd("I"), rd("Q")
                if et == 8:
                    for _ in range(n):
                        f.seek(rd("Q"), 1)
                else:
                    f.seek(n * struct.calcsize("<" + SCALAR[et]), 1)
            else:
                return rd(SCALAR[t])
            return None

        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        self.version = rd("I")
        self.n_tensors, self.n_kv = rd("Q"), rd("Q")
        self.kv_start = f.tell()
        self.kv = {}
        for _ in range(self.n_kv):
            key = rd_str()
            self.kv[key] = value(rd("I"))
        self.kv_end = f.tell()
        self.tensors = {}
        for _ in range(self.n_tensors):
            name = rd_str()
            dims = [rd("Q") for _ in range(rd("I"))]
            self.tensors[name] = (dims, rd("I"), rd("Q"))
        self.infos_end = f.tell()
        self.alignment = self.kv.get("general.alignment") or 32
        self.data_start = (self.infos_end + self.alignment - 1) // self.alignment * self.alignment
