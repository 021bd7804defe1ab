"""Prints `faces bench embed --json` and fr_encode.py reports (one per line on stdin) as one table."""
import json
import sys


def f(v):
    return "-" if v is None else f"{v:.2f}"


print(f"{'ENGINE':<18} {'MODEL':<30} {'FACES':>5} {'ALIGN ms':>9} {'EMBED ms':>9} {'+FLIP ms':>9} {'PEAK MB':>8}")
for line in sys.stdin:
    r = json.loads(line)
    for m in r["models"]:
        print(f"{r['engine']:<18} {m['model']:<30} {m['faces']:>5} {f(m['align_ms']):>9} {f(m['embed_ms']):>9} "
              f"{f(m['embed_flip_ms']):>9} {r['peak_rss_mb']:>8.0f}")
