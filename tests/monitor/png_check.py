#!/usr/bin/env python3
"""Checks a screenshot of herd's live page: the chart area must hold
chart-coloured pixels (the throughput line or its fill, blue: b > r + 40).
A minimal PNG decoder (zlib + the five row filters), no third-party modules.
Usage: png_check.py FILE X0 Y0 X1 Y1 MIN_PIXELS"""
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main():
    path = sys.argv[1]
    x0, y0, x1, y1, need = (int(v) for v in sys.argv[2:7])
    width, height, bpp, rows = decode(path)
    count = 0
    for y in range(y0, min(y1, height)):
        row = rows[y]
        for x in range(x0, min(x1, width)):
            r, g, b = row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]
            if b > r + 40:
                count += 1
    print(f"{path}: {width}x{height}, {count} chart pixels in ({x0},{y0})-({x1},{y1})")
    sys.exit(0 if count >= need else 1)


main()
