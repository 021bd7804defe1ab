#!/usr/bin/env bash
# LFW verification, side by side in one run: `faces evaluate lfw` (every
# installed recogniser) and face_recognition with its defaults (HOG detector,
# 0.6 tolerance, and the best threshold chosen per fold), on the same pairs.
#   scripts/bench-lfw.sh [PAIRS_FILE]     (default: View 2, ../shared/data/lfw/pairs.txt)
# Env: FACES (binary, default `faces` on PATH). face_recognition takes ~10 min on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$here/../../shared/data/lfw"
pairs="${1:-$data/pairs.txt}"
faces="${FACES:-faces}"
. "$here/bench/face_recognition_env.sh"

echo "==> faces evaluate lfw" >&2
"$faces" evaluate lfw --data "$data" --pairs "$pairs"
echo
echo "==> face_recognition (this takes a while)" >&2
"$FR_PYTHON" "$here/bench/fr_lfw.py" --data "$data" --pairs "$pairs" | python3 "$here/bench/lfw_table.py"
