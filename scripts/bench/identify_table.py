"""Prints identify_metrics.py reports (JSON files) side by side as a markdown table.

    python3 identify_table.py A.json B.json ...

Columns: rank-1, FNIR at FPIR 0.1/1/10%, and at the tool's own decision the
wrong names, false alarms and misses; enrolment throughput (images/s over
the timed enrolment, wall clock; CPU-time throughput in brackets when known)
where the report has a timing. Standard library only.
"""
import json
import sys


def pct(x):
    return "-" if x is None else f"{100 * x:.2f}%"


def fnir(report, fpir):
    return next((a["fnir"] for a in report["at_fpir"] if abs(a["fpir"] - fpir) < 1e-12), None)


def throughput(report):
    t = report.get("timing") or {}
    if not t.get("images_per_second"):
        return "-"
    cell = f"{t['images_per_second']:.1f}"
    if t.get("images_per_cpu_second"):
        cell += f" ({t['images_per_cpu_second']:.1f}/CPU-s)"
    if t.get("images"):
        cell += f" ×{t['images']}"
    return cell


reports = []
for path in sys.argv[1:]:
    with open(path) as f:
        reports.append(json.load(f))
if not reports:
    sys.exit("usage: identify_table.py REPORT.json...")

p = reports[0]["probes"]
print(f"LFW identification: {p['mated']} mated probes (first image of each person with 2+ images "
      f"enrolled), {p['non_mated']} non-mated probes (people with one image).")
print()
print("| tool | rank-1 | FNIR @ FPIR 0.1% | FNIR @ FPIR 1% | FNIR @ FPIR 10% | wrong names | false alarms "
      "| misses | no face | enrol images/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in reports:
    d = r["decision"]
    cells = [r["name"], pct(r["rank1"]), pct(fnir(r, 0.001)), pct(fnir(r, 0.01)), pct(fnir(r, 0.1)),
             str(d["wrong_names"]), str(d["false_alarms"]), str(d["misses"]), str(r["probes"]["no_face"]),
             throughput(r)]
    print("| " + " | ".join(cells) + " |")
print()
print("Wrong names and misses are of the mated probes, false alarms of the non-mated ones, at each tool's "
      "own decision; FNIR counts a mated probe as found only if its top-1 is right and scores at least "
      "the threshold that lets that share of non-mated probes through. Enrol images/s: the enrolment "
      "timing each report carries (×N images).")
