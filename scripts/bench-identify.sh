#!/usr/bin/env bash
# LFW identification, side by side in one run: `faces enrol` + `faces identify`
# and face_recognition (HOG, default encodings, compare_faces at 0.6), on the
# same gallery and probes, plus the time to enrol all of LFW (13,233 images).
#   FACES=path/to/faces FACES_MODELS=... scripts/bench-identify.sh [--only ours|fr]
#       [--fr-jobs N] [--limit-people N] [--no-enrol-all]
# Protocol (scripts/bench/lfw_split.py): people sorted by folder name, images
# by file name; of each person with 2+ images the first is enrolled and the
# rest are mated probes; each person with one image is a non-mated probe.
# Metrics (scripts/bench/identify_metrics.py): rank-1, FNIR at FPIR 0.1/1/10%,
# and wrong names / false alarms / misses at each tool's own decision.
# Env: FACES (binary, default `faces` on PATH), FACES_MODELS (read by faces),
#      LFW (default ../shared/data/lfw), WORK (outputs, default ~/.cache/faces-bench/identify),
#      FR_CACHE (face_recognition's encoding cache, default ~/.cache/faces-bench/fr-lfw-encodings.npz).
# face_recognition encodes every image once (~25-35 min on one core; cached in
# ~/.cache/faces-bench/fr-lfw-encodings.npz, so reruns take seconds and report
# the original timing). --fr-jobs: its worker processes (default 1).
# --limit-people N: only the first N people (development; skips enrolling all of LFW).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lfw="$(cd "${LFW:-$here/../../shared/data/lfw}" && pwd)"
work="${WORK:-$HOME/.cache/faces-bench/identify}"
faces="${FACES:-faces}"
only="" fr_jobs=1 limit="" enrol_all=1
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --fr-jobs) fr_jobs="$2"; shift 2 ;;
    --limit-people) limit="$2"; shift 2 ;;
    --no-enrol-all) enrol_all=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$only" in ""|ours|fr) ;; *) echo "--only takes ours or fr" >&2; exit 2 ;; esac
[ -n "$limit" ] && enrol_all=0
mkdir -p "$work"
split="$work/split"
python3 "$here/bench/lfw_split.py" "$lfw" "$split" ${limit:+--limit-people "$limit"}
reports=()
# LFW is a public research data set: one data-set-wide basis, recorded as such.
basis=(--basis research --purpose "LFW identification benchmark")

# Seconds since the epoch, to the microsecond.
now() { echo "$EPOCHREALTIME"; }

if [ "$only" != fr ]; then
  echo "==> faces: $faces" >&2
  # Fresh galleries (enrol adds to an existing one); SQLite's -wal/-shm files go too.
  for g in "$work/lfw.gallery" "$work/all.gallery"; do rm -f "$g" "$g-wal" "$g-shm" "$g-journal"; done
  rm -f "$work/ours.jsonl"
  # Probe paths, one a line, from the CSV (paths may hold commas).
  python3 -c 'import csv, sys; [print(r["path"]) for r in csv.DictReader(open(sys.argv[1], newline=""))]' \
    "$split/probes.csv" > "$work/probes.txt"
  n_enrol=$(( $(wc -l < "$split/enrol.csv") - 1 ))
  n_probes=$(wc -l < "$work/probes.txt")

  echo "==> faces enrol: $n_enrol images" >&2
  t0=$(now)
  "$faces" enrol "$split/enrol.csv" --gallery "$work/lfw.gallery" "${basis[@]}" >&2
  t1=$(now)

  echo "==> faces identify: $n_probes probes" >&2
  status=0
  # xargs splits the list over as many invocations as the command line needs.
  xargs -d '\n' -a "$work/probes.txt" \
    "$faces" identify --main-face --json --top-k 5 --gallery "$work/lfw.gallery" > "$work/ours.jsonl" || status=$?
  t2=$(now)
  [ "$status" -eq 0 ] || echo "warning: faces identify exited with status $status (see the missing records below)" >&2

  t3="" t4="" n_all=0
  if [ "$enrol_all" = 1 ]; then
    n_all=$(find "$lfw" -mindepth 2 -maxdepth 2 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | wc -l)
    echo "==> faces enrol, all of LFW: $n_all images" >&2
    t3=$(now)
    "$faces" enrol "$lfw" --gallery "$work/all.gallery" "${basis[@]}" >&2
    t4=$(now)
  fi
  python3 - "$work/ours.timing.json" "$n_enrol" "$t0" "$t1" "$n_probes" "$t2" "$n_all" "$t3" "$t4" <<'EOF'
import json, sys
out, n_enrol, t0, t1, n_probes, t2, n_all, t3, t4 = sys.argv[1:]
gallery = {"images": int(n_enrol), "seconds": float(t1) - float(t0)}
timing = {"tool": "faces", "gallery_enrol": gallery,
          "identify": {"images": int(n_probes), "seconds": float(t2) - float(t1)}}
if t3:
    # The table's enrol images/s: all of LFW on the folder layout.
    timing.update(images=int(n_all), seconds=float(t4) - float(t3), timing_from="faces enrol LFW_DIR")
else:
    timing.update(images=gallery["images"], seconds=gallery["seconds"], timing_from="faces enrol enrol.csv")
timing["images_per_second"] = timing["images"] / timing["seconds"]
json.dump(timing, open(out, "w"), indent=2)
print(f"faces: enrol {timing['images']} images in {timing['seconds']:.1f} s "
      f"({timing['images_per_second']:.2f} images/s, {timing['timing_from']}); "
      f"identify {n_probes} probes in {timing['identify']['seconds']:.1f} s", file=sys.stderr)
EOF
  echo "==> metrics: faces" >&2
  python3 "$here/bench/identify_metrics.py" "$split" "$work/ours.jsonl" --name "faces" \
    --json "$work/ours.metrics.json" --timing "$work/ours.timing.json"
  echo
  reports+=("$work/ours.metrics.json")
fi

if [ "$only" != ours ]; then
  . "$here/bench/face_recognition_env.sh"
  echo "==> face_recognition, $fr_jobs job(s) (~25-35 min on one core unless cached)" >&2
  "$FR_PYTHON" "$here/bench/fr_identify.py" "$lfw" "$split" "$work/fr.jsonl" --jobs "$fr_jobs" \
    ${FR_CACHE:+--cache "$FR_CACHE"}
  echo "==> metrics: face_recognition" >&2
  python3 "$here/bench/identify_metrics.py" "$split" "$work/fr.jsonl" --name "face_recognition (HOG, 0.6)" \
    --json "$work/fr.metrics.json" --timing "$work/fr.timing.json"
  echo
  reports+=("$work/fr.metrics.json")
fi

python3 "$here/bench/identify_table.py" "${reports[@]}" | tee "$work/table.md"
echo "(reports, results and table in $work)" >&2
