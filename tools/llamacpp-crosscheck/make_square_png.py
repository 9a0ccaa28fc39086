#!/usr/bin/env python3
"""Writes a deterministic synthetic RGB PNG of SIZE x SIZE pixels (standard library only).

Used so that the image already has the model's input size: resizing is then the identity in
both engines and the comparison sees only the vision tower, not two resamplers.
    make_square_png.py SIZE OUT.png
"""
import struct
import sys
import zlib


def main():
    size, out = int(sys.argv[1]), sys.argv[2]
    rows = []
    seed = 12345
    for y in range(size):
        row = bytearray([0])  # filter type None
        for x in range(size):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            noise = (seed >> 16) % 24
            r = (x * 255) // max(size - 1, 1)
            g = (y * 255) // max(size - 1, 1)
            b = 128 + noise
            # a red square and a blue disc, so the picture has edges and colours
            if size // 8 <= x < size // 2 and size // 8 <= y < size // 2:
                r, g, b = 220, 30 + noise, 30
            cx, cy, rad = 3 * size // 4, 3 * size // 4, size // 6
            if (x - cx) ** 2 + (y - cy) ** 2 <= rad * rad:
                r, g, b = 20, 40 + noise, 210
            row += bytes((min(r, 255), min(g, 255), min(b, 255)))
        rows.append(bytes(row))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open(out, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    main()
