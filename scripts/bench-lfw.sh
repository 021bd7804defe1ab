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
"$FR_PYTHON" "$here/bench/fr_lfw.py" --data "$data" --pairs "$pairs" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(f"{\"MODEL\":<38} {\"AT 0.6\":>8} {\"10-FOLD\":>16} {\"TAR@FAR=1e-3\":>14} {\"NO FACE\":>8} {\"MS/IMAGE\":>9}")
print(f"{r[\"model\"]:<38} {100*r[\"accuracy_at_0.6\"]:>7.2f}% {100*r[\"mean_accuracy\"]:>9.2f}% ±{100*r[\"std_accuracy\"]:.2f} {100*r[\"tar_at_far_1e3\"]:>13.2f}% {r[\"images_without_face\"]:>8} {r[\"ms_per_image\"]:>9.1f}")
'
