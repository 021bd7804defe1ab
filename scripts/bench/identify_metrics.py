"""Identification metrics for the LFW split, from a results file like `faces identify --json`.

    python3 identify_metrics.py SPLIT_DIR RESULTS_JSONL [--name LABEL] [--json OUT] [--timing FILE]

The protocol (fixed, see lfw_split.py): people sorted by folder name, each
person's images by file name; for every person with two or more images the
first is enrolled and the rest are mated probes (expected: that person); every
person with one image is a non-mated probe (expected: unknown).

RESULTS_JSONL holds one JSON record per image (one a line, or concatenated):
{"file": PATH, "faces": [{"name", "similarity", "candidates": [{"name",
"similarity"}, ...]}, ...]}, higher similarity = more alike (face_recognition's
results carry -distance). Records are matched to probes.csv by resolved
absolute path. The probe's face is faces[0] (our tool lists the main face
first); its top-1 candidate is the candidate with the highest similarity (the
first one listed on a tie). A probe with no face, no candidates, an error or
no record at all returns nothing: a miss for a mated probe, a correct
"unknown" for a non-mated one (missing records are counted and reported).

Metrics over the probes:
- rank-1: fraction of mated probes whose top-1 candidate is the right person
  (no threshold).
- FNIR at FPIR = 0.1%, 1%, 10%: with N non-mated probes, k = floor(FPIR * N)
  false alarms are allowed. The threshold t is the k-th highest top-1 score of
  the non-mated probes (the exact empirical quantile), so that k of them have
  a score >= t. Ties: if more than k non-mated scores are >= that value, t is
  raised to the next float above it, so the achieved FPIR (reported) never
  exceeds the target; with k = 0, t is just above the highest non-mated score;
  if k is at least the number of non-mated probes with a score, t is the
  lowest of those scores (non-mated probes without a result never alarm).
  FNIR = fraction of mated probes NOT (top-1 is the right person AND score >= t).
- At the tool's own decision (the `name` it gave the face; no name, "" or
  "unknown" = unknown): correct names and wrong names (someone else's) for
  mated probes, misses ("unknown" for a mated probe), false alarms (a name for
  a non-mated probe); the first 20 wrong names and false alarms are listed.

Prints a report and, with --json, writes it as JSON (with the timing JSON of
--timing included as "timing"). Standard library only.
"""
import argparse
import csv
import json
import math
import os
import sys

FPIRS = (0.001, 0.01, 0.1)
LISTED = 20


def read_records(path):
    """JSON objects from a file, one a line or concatenated (pretty-printed too)."""
    text = open(path).read()
    decoder = json.JSONDecoder()
    records, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return records
        obj, i = decoder.raw_decode(text, i)
        records.append(obj)


def resolved(path):
    return os.path.realpath(os.path.abspath(path))


def is_unknown(name):
    return name is None or name == "" or name == "unknown"


def probe_result(record):
    """(top-1 name or None, top-1 score or None, decided name or None, score type) for one record."""
    faces = (record or {}).get("faces") or []
    if not faces:
        return None, None, None
    face = faces[0]
    candidates = sorted(face.get("candidates") or [], key=lambda c: -c["similarity"])
    name = None if is_unknown(face.get("name")) else face["name"]
    if not candidates:
        return None, None, name
    return candidates[0]["name"], float(candidates[0]["similarity"]), name


def threshold_at(nonmated_scores, fpir):
    """(threshold, allowed false alarms k); see the module docstring for the rule and ties."""
    scores = sorted((s for s in nonmated_scores if s is not None), reverse=True)
    k = math.floor(fpir * len(nonmated_scores) + 1e-9)
    if k == 0:
        return (math.nextafter(scores[0], math.inf) if scores else -math.inf), k
    if k >= len(scores):
        return (scores[-1] if scores else -math.inf), k
    t = scores[k - 1]
    if scores[k] >= t:  # a tie straddles the k-th place
        t = math.nextafter(t, math.inf)
    return t, k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("split_dir", help="folder with probes.csv (lfw_split.py)")
    ap.add_argument("results", help="JSON records, one per image, as `faces identify --json` prints them")
    ap.add_argument("--name", help="label for the report (default: the results file name)")
    ap.add_argument("--json", help="write the report here as JSON")
    ap.add_argument("--timing", help="timing JSON to include in the report (e.g. fr_identify's sidecar)")
    args = ap.parse_args()
    label = args.name or os.path.basename(args.results)

    with open(os.path.join(args.split_dir, "probes.csv"), newline="") as f:
        probes = [(r["path"], r["subject"], r["mated"] == "1") for r in csv.DictReader(f)]
    records = read_records(args.results)
    by_path, duplicates = {}, 0
    for r in records:
        key = resolved(r.get("file", ""))
        if key in by_path:
            duplicates += 1
        else:
            by_path[key] = r
    score_type = next((r["score"] for r in records if "score" in r), "similarity")

    missing = errors = no_face = 0
    mated, nonmated = [], []  # (path, subject, top-1 name, top-1 score, decided name)
    for path, subject, is_mated in probes:
        record = by_path.get(resolved(path))
        if record is None:
            missing += 1
        elif record.get("error"):
            errors += 1
        top1, score, name = probe_result(record)
        if record is not None and not record.get("error") and not record.get("faces"):
            no_face += 1
        (mated if is_mated else nonmated).append((path, subject, top1, score, name))

    rank1_hits = sum(top1 == subject for _, subject, top1, _, _ in mated)
    at_fpir = []
    for fpir in FPIRS:
        t, k = threshold_at([s for _, _, _, s, _ in nonmated], fpir)
        alarms = sum(s is not None and s >= t for _, _, _, s, _ in nonmated)
        hits = sum(top1 == subject and s is not None and s >= t for _, subject, top1, s, _ in mated)
        at_fpir.append({"fpir": fpir, "threshold": t, "allowed_false_alarms": k,
                        "achieved_fpir": alarms / len(nonmated) if nonmated else None,
                        "fnir": 1 - hits / len(mated) if mated else None})

    correct = [m for m in mated if m[4] is not None and m[4] == m[1]]
    wrong = [m for m in mated if m[4] is not None and m[4] != m[1]]
    misses = [m for m in mated if m[4] is None]
    alarms = [n for n in nonmated if n[4] is not None]
    row = lambda p: {"file": p[0], "expected": p[1], "given": p[4], "score": p[3]}
    report = {
        "name": label, "results": os.path.abspath(args.results), "score": score_type,
        "probes": {"mated": len(mated), "non_mated": len(nonmated), "no_face": no_face,
                   "missing_records": missing, "error_records": errors, "duplicate_records": duplicates},
        "rank1": rank1_hits / len(mated) if mated else None,
        "at_fpir": at_fpir,
        "decision": {"correct": len(correct), "wrong_names": len(wrong), "misses": len(misses),
                     "false_alarms": len(alarms), "non_mated_unknown": len(nonmated) - len(alarms)},
        "wrong_names": [row(m) for m in wrong[:LISTED]],
        "false_alarms": [row(n) for n in alarms[:LISTED]],
    }
    if args.timing:
        with open(args.timing) as f:
            report["timing"] = json.load(f)

    pct = lambda x: "-" if x is None else f"{100 * x:.2f}%"
    as_distance = score_type == "negative distance"
    shown = lambda t: f"{t:.4f}" + (f" (distance {-t:.4f})" if as_distance and math.isfinite(t) else "")
    out = [f"== {label}: {len(mated)} mated and {len(nonmated)} non-mated probes; {no_face} with no face"
           + (f"; {missing} with NO RECORD" if missing else "") + (f"; {errors} errors" if errors else "")
           + (f"; {duplicates} duplicate records ignored" if duplicates else ""),
           f"rank-1 (no threshold): {pct(report['rank1'])} ({rank1_hits}/{len(mated)})"]
    for a in at_fpir:
        out.append(f"FNIR at FPIR {100 * a['fpir']:g}%: {pct(a['fnir'])}  threshold {shown(a['threshold'])} "
                   f"({a['allowed_false_alarms']} false alarms allowed, achieved FPIR {pct(a['achieved_fpir'])})")
    d = report["decision"]
    out.append(f"own decision: {d['correct']} correct, {d['wrong_names']} wrong names, {d['misses']} misses "
               f"(of {len(mated)} mated); {d['false_alarms']} false alarms (of {len(nonmated)} non-mated)")
    for title, rows in (("wrong names", report["wrong_names"]), ("false alarms", report["false_alarms"])):
        if rows:
            out.append(f"first {len(rows)} {title} (probe, expected, given, score):")
            for r in rows:
                out.append(f"  {os.path.basename(r['file'])}  {r['expected']}  ->  {r['given']}  {r['score']:.4f}")
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if missing:
        print(f"warning: {missing} probes have no record in {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
