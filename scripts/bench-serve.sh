#!/usr/bin/env bash
# Load benchmark of `faces serve`: POST /v1/identify with a one-face 630x374
# photo (face_recognition's john2.jpeg) at concurrency 1, 4 and 32 with wrk
# (Debian's `wrk`) against loopback, each level for a fixed time. Reports
# throughput, p50/p99 latency, answers by status (anything but 200 and the
# intended 429/503 is an error), and the server's resident and peak memory
# after each level.
#   scripts/bench-serve.sh [SECONDS_PER_LEVEL]     (default 20)
# Env: FACES (binary, default `faces` on PATH), WORKERS (default: all cores), QUEUE (default 64).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
faces="${FACES:-faces}"
seconds="${1:-20}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
data="$here/../../shared/data/samples/face_recognition"
photo="$data/knn_examples/train/kit_harington/john2.jpeg"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
export FACES_KEY_FILE="$work/key" FACES_AUDIT_LOG="$work/audit.jsonl"

"$faces" enrol "$data/knn_examples/train" --gallery "$work/bench.gallery" \
  --basis research --purpose "load benchmark on public sample photos" >/dev/null 2>&1
key="$("$faces" keys create --gallery "$work/bench.gallery" --scope identify 2>/dev/null)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$faces" serve --gallery "$work/bench.gallery" --addr "127.0.0.1:$port" --queue "${QUEUE:-64}" \
  ${WORKERS:+--workers "$WORKERS"} 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done

cat > "$work/identify.lua" <<LUA
wrk.method = "POST"
local f = io.open("$photo", "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
wrk.headers["Authorization"] = "Bearer $key"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do merged[status] = (merged[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(merged) do table.insert(parts, status .. ":" .. n) end
  io.write(string.format("RESULT %d %.2f %.1f %.1f %d %s\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
LUA

mem() { awk -v k="$1" '$1 == k":" {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
echo "faces serve, POST /v1/identify, $(basename "$photo") (630x374, 1 face), ${seconds}s per level, $(nproc) cores, $(grep -o 'listening.*' "$work/server.log" | head -1)"
echo
echo "| concurrency | requests | requests/s | p50 ms | p99 ms | answers by status | socket errors | RSS MB after | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in 1 4 32; do
  threads=$(( c < 2 ? c : 2 ))
  line="$(wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 30s --latency -s "$work/identify.lua" \
    "http://127.0.0.1:$port/v1/identify" | grep '^RESULT')"
  read -r _ n rps p50 p99 errors statuses <<<"$line"
  echo "| $c | $n | $rps | $p50 | $p99 | $statuses | $errors | $(mem VmRSS) | $(mem VmHWM) |"
done
entries=$(wc -l < "$FACES_AUDIT_LOG")
echo
echo "(audit trail: $entries entries; 'faces audit verify' on it: $("$faces" audit verify 2>&1 | tail -1))"
