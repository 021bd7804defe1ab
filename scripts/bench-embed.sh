#!/usr/bin/env bash
# Alignment and embedding time per face, side by side in one run: every
# installed recogniser with ONNX Runtime and tract on one thread, and
# face_recognition's `face_encodings` on the same photos.
#   scripts/bench-embed.sh [IMAGE...]     (default: two sample group photos)
# Env: FACES (binary, default `faces` on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../../shared/data/samples"
faces="${FACES:-faces}"
if [ $# -eq 0 ]; then
  set -- "$samples/insightface/t1.jpg" "$samples/face_recognition/two_people.jpg"
fi
. "$here/bench/face_recognition_env.sh"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for engine in ort tract; do
  "$faces" --engine "$engine" --threads 1 bench embed --json "$@" >> "$out"
done
OMP_NUM_THREADS=1 "$FR_PYTHON" "$here/bench/fr_encode.py" "$@" >> "$out"
echo "$ $0 $*" | sed "s|$samples/||g"
python3 "$here/bench/embed_table.py" < "$out"
