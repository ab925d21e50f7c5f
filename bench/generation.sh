#!/usr/bin/env bash
# Generation-only benchmark, side by side in one sitting: raw-aiohttp ideal, notos, distilabel
# 1.5.3, against ../shared/bench/fake_openai_server.py (3 generations per row).
#
#   N=4000 LATENCY_MS=200 bash bench/generation.sh      (ERROR_RATE=0.2: the server fails 20% with HTTP 500)
#
# Needs ../shared/bench (server + measure.py) and, for distilabel, bench/.venv-distilabel
# (see bench/README.md). Only the server started here is stopped, by its PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED:-$ROOT/../shared/bench}
PY=$ROOT/.venv/bin/python
DPY=$HERE/.venv-distilabel/bin/python
N=${N:-4000}; LATENCY_MS=${LATENCY_MS:-200}; ERROR_RATE=${ERROR_RATE:-0}; PORT=${PORT:-18788}
OUT=${OUT:-$HERE/results/generation-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
URL="http://127.0.0.1:$PORT/v1"

"$PY" "$SHARED/fake_openai_server.py" --port "$PORT" --latency-ms "$LATENCY_MS" --error-rate "$ERROR_RATE" --tokens 64 > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "$URL/models" && break; sleep 0.1; done

case_run() { # tag python script
  curl -s -X POST "http://127.0.0.1:$PORT/stats/reset" > /dev/null
  "$PY" "$SHARED/measure.py" --out "$OUT/$1.measure.json" --timeout 1800 --stdout "$OUT/$1.log" -- \
    "$2" "$HERE/$3" --base-url "$URL" --n "$N" --out "$OUT/$1.result.json" > /dev/null
  echo "$1: $(cat "$OUT/$1.result.json" 2>/dev/null) $(cat "$OUT/$1.measure.json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("wall=%ss peak_rss=%sMB" % (d["wall_s"], d["peak_tree_rss_mb"]))')"
}
case_run ideal "$PY" generation_ideal.py
case_run notos "$PY" generation_notos.py
if [ -x "$DPY" ]; then case_run distilabel "$DPY" generation_distilabel.py; else echo "distilabel: skipped (no $DPY)"; fi
echo "results in $OUT"
