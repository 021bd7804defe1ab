"""Prints `faces bench` and face_recognition JSON reports (one per line on stdin) side by side."""
import json
import sys
from collections import defaultdict

reports = [json.loads(line) for line in sys.stdin if line.strip()]
cols = [f"{r['engine']} x{r['threads']}" for r in reports]
cells = defaultdict(dict)
order = []
for col, r in zip(cols, reports):
    for m in r["measurements"]:
        key = (m["file"].split("/")[-1], f"{m['width']}x{m['height']}")
        if key not in cells:
            order.append(key)
        cells[key][col] = m

width = max(len(c) for c in cols) + 2
print("median ms per image (faces found)".ljust(44) + "".join(c.rjust(width) for c in cols))
for key in order:
    line = f"{key[0]:<30} {key[1]:>12}  "
    for col in cols:
        m = cells[key].get(col)
        line += (f"{m['median_ms']:.1f} ({m['faces']})" if m else "-").rjust(width)
    print(line)
print("peak memory, MB".ljust(44) + "".join(f"{r['peak_rss_mb']:.0f}".rjust(width) for r in reports))
base = next((r for r in reports if r["engine"].startswith("face_recognition")), None)
if base:
    print()
    for col, r in zip(cols, reports):
        if r is base:
            continue
        for m, b in zip(r["measurements"], base["measurements"]):
            if m["width"] >= 1900:
                print(f"{col}: {b['median_ms'] / m['median_ms']:.1f}x faster than HOG on "
                      f"{m['file'].split('/')[-1]} at {m['width']}x{m['height']} "
                      f"({m['faces']} vs {b['faces']} faces)")
