#!/usr/bin/env python3
"""Paints the project's bundled demo picture, assets/demo.png (480x360 RGB).

A simple photo-like scene drawn from scratch with numpy: a sky gradient with a
sun glow and soft clouds, a textured green ground, and three coloured objects
standing on it (a red circle, a blue square, a yellow triangle) with soft
shadows. Shape edges are anti-aliased from signed distances; a little smooth and
fine noise gives it texture. Everything is deterministic (fixed seed, no
external data), and the PNG is written with zlib + struct only (no Pillow).

Usage: python3 tools/make_demo_image.py [output.png]   (default: assets/demo.png)
"""
import os
import struct
import sys
import zlib

import numpy as np

W, H = 480, 360
HORIZON = 215
SEED = 20240611


def smooth_noise(rng, h, w, cell):
    """Value noise: a coarse random grid, bilinearly interpolated to h x w."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.standard_normal((gh, gw))
    ys = np.arange(h) / cell
    xs = np.arange(w) / cell
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    # smoothstep weights avoid visible grid lines
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def coverage(sdf):
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def blend(img, alpha, colour):
    a = alpha[..., None]
    img[:] = img * (1 - a) + np.asarray(colour, dtype=np.float64) * a


def paint():
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    px, py = xx + 0.5, yy + 0.5  # pixel centres
    img = np.zeros((H, W, 3), dtype=np.float64)

    # Sky: deep blue at the top to a pale haze at the horizon.
    t = np.clip(py / HORIZON, 0, 1)[..., None]
    top = np.array([52, 110, 190.0])
    haze = np.array([196, 220, 238.0])
    img[:] = top * (1 - t) + haze * t ** 0.8

    # Sun glow in the upper right.
    sun_d = np.hypot(px - 400, py - 60)
    img += (np.exp(-(sun_d / 70.0) ** 2) * 60)[..., None] * np.array([1.0, 0.9, 0.6])
    blend(img, coverage(sun_d - 22), (255, 246, 214))

    # Soft clouds: thresholded smooth noise, stronger higher in the sky.
    clouds = smooth_noise(rng, H, W, 48) + 0.5 * smooth_noise(rng, H, W, 20)
    cloud_a = np.clip((clouds - 0.7) * 0.9, 0, 0.85) * np.clip((HORIZON - 40 - py) / 80, 0, 1)
    blend(img, cloud_a, (250, 250, 252))

    # Distant hills along the horizon.
    hill = HORIZON - 18 - 14 * np.sin(px / 55.0) - 8 * np.sin(px / 23.0 + 1.3)
    blend(img, coverage(hill - py) * (py < HORIZON + 2), (92, 130, 98))

    # Ground: green, darker towards the viewer, with grassy texture.
    g = np.clip((py - HORIZON) / (H - HORIZON), 0, 1)[..., None]
    ground = np.array([122, 170, 88.0]) * (1 - g) + np.array([62, 112, 46.0]) * g
    grass = smooth_noise(rng, H, W, 9)[..., None] * np.array([6, 9, 4.0])
    ground_a = coverage(HORIZON - py)
    blend(img, ground_a, 0)  # clear, then add the textured ground
    img += (ground + grass) * ground_a[..., None]

    # Soft shadows under the objects (ellipses on the ground).
    for cx, cy, rx, ry in ((112, 302, 70, 14), (252, 296, 62, 12), (390, 288, 66, 12)):
        d = ((px - cx - 12) / rx) ** 2 + ((py - cy) / ry) ** 2
        img *= (1 - 0.35 * np.exp(-d * 1.6))[..., None]

    # Red circle (a ball) with simple shading.
    cx, cy, r = 112, 246, 56
    d = np.hypot(px - cx, py - cy)
    shade = np.clip(1.05 - 0.45 * np.hypot(px - (cx - 20), py - (cy - 22)) / r, 0.45, 1.1)[..., None]
    ball = np.array([214, 38, 36.0]) * shade
    a = coverage(d - r)[..., None]
    img[:] = img * (1 - a) + ball * a

    # Blue square (a box), slightly lit from the left.
    x0, x1, y0, y1 = 200, 304, 192, 296
    qx = np.abs(px - (x0 + x1) / 2) - (x1 - x0) / 2
    qy = np.abs(py - (y0 + y1) / 2) - (y1 - y0) / 2
    box_sdf = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    box = np.array([38, 78, 200.0]) * (1.08 - 0.25 * ((px - x0) / (x1 - x0)))[..., None]
    a = coverage(box_sdf)[..., None]
    img[:] = img * (1 - a) + box * a

    # Yellow triangle (a pyramid): signed distance ~ max over edges of the outward distance.
    tri = np.array([[390.0, 168.0], [330.0, 288.0], [450.0, 288.0]])
    tri_sdf = np.full((H, W), -np.inf)
    for i in range(3):
        p0, p1 = tri[i], tri[(i + 1) % 3]
        ex, ey = p1 - p0
        n = np.array([ey, -ex]) / np.hypot(ex, ey)  # outward for this winding
        if np.dot(n, tri.mean(axis=0) - p0) > 0:
            n = -n
        tri_sdf = np.maximum(tri_sdf, (px - p0[0]) * n[0] + (py - p0[1]) * n[1])
    pyr = np.array([240, 204, 40.0]) * np.where(px < 390, 1.04, 0.86)[..., None]
    a = coverage(tri_sdf)[..., None]
    img[:] = img * (1 - a) + pyr * a

    # Fine grain, like sensor noise.
    img += rng.normal(0.0, 1.2, size=(H, W, 1))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def filter_rows(img):
    """PNG scanline filtering: per row, the filter (None/Sub/Up/Average/Paeth)
    with the smallest sum of absolute residuals (the usual heuristic)."""
    h, w, c = img.shape
    rows = img.reshape(h, w * c).astype(np.int32)
    out = bytearray()
    prev = np.zeros(w * c, dtype=np.int32)
    for y in range(h):
        cur = rows[y]
        left = np.concatenate([np.zeros(c, dtype=np.int32), cur[:-c]])
        upleft = np.concatenate([np.zeros(c, dtype=np.int32), prev[:-c]])
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        candidates = [cur, cur - left, cur - prev, cur - (left + prev) // 2, cur - paeth]
        residuals = [(cand % 256).astype(np.uint8) for cand in candidates]
        cost = [np.abs(r.astype(np.int8).astype(np.int32)).sum() for r in residuals]
        best = int(np.argmin(cost))
        out.append(best)
        out += residuals[best].tobytes()
        prev = cur
    return bytes(out)


def write_png(path, img):
    h, w, _ = img.shape
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", ihdr)
    data += png_chunk(b"IDAT", zlib.compress(filter_rows(img), 9))
    data += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "assets", "demo.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    n = write_png(out, paint())
    print(f"wrote {out} ({W}x{H}, {n} bytes)")


if __name__ == "__main__":
    main()
