#!/usr/bin/env bash
# Detection benchmark, side by side in one run: `faces` with ONNX Runtime and
# tract on 1 and 2 threads, and face_recognition's HOG detector (default
# settings) on the same photos resized to 640 px and 1080p.
#   scripts/bench-detect.sh [IMAGE...]     (default: four sample photos)
# Env: FACES (binary, default `faces` on PATH), REPEAT (timed runs, default 5),
#      SIZES (default 640,1920).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../shared/data/samples"
faces="${FACES:-faces}"
repeat="${REPEAT:-5}"
sizes="${SIZES:-640,1920}"
if [ $# -eq 0 ]; then
  set -- "$samples/face_recognition/obama-1080p.jpg" "$samples/face_recognition/two_people.jpg" \
         "$samples/insightface/t1.jpg" "$samples/face_recognition/knn_examples/test/obama_and_biden.jpg"
fi
. "$here/bench/face_recognition_env.sh"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for engine in ort tract; do
  for threads in 1 2; do
    echo "==> faces --engine $engine --threads $threads" >&2
    "$faces" --engine "$engine" --threads "$threads" bench detect --json --repeat "$repeat" --sizes "$sizes" "$@" >> "$out"
  done
done
echo "==> face_recognition HOG" >&2
OMP_NUM_THREADS=1 "$FR_PYTHON" "$here/bench/fr_detect.py" --repeat "$(( repeat < 3 ? repeat : 3 ))" --sizes "$sizes" "$@" >> "$out"
echo
echo "$ $0 $*" | sed "s|$samples/||g"
python3 "$here/bench/table.py" < "$out"
