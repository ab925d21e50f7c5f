#!/usr/bin/env bash
# The full UltraFeedback-shaped workload side by side in one sitting: raw-aiohttp ideal
# (../shared/bench/ideal.py), notos's hand-built pipeline (resume on), the shipped
# `ultrafeedback` recipe as a user runs it (`notos run`, critique off, overall-rating), and
# distilabel 1.5.3 (../shared/bench/distilabel_ultrafeedback.py), against
# ../shared/bench/fake_openai_server.py.
#
#   bash bench/ultrafeedback.sh                       (N=4000, latencies 200 and 0 ms, start-up at N=10)
#   NS="1000" LATS="200" STARTUP=0 bash bench/ultrafeedback.sh
#   CASES="ideal recipe" NS=4000 LATS=200 STARTUP=0 bash bench/ultrafeedback.sh
#
# Needs ../shared/bench; distilabel runs only where bench/.venv-distilabel exists (see
# bench/README.md). Only the server started here is stopped, by its PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED:-$ROOT/../shared/bench}
PY=$ROOT/.venv/bin/python
DPY=$HERE/.venv-distilabel/bin/python
NS=${NS:-4000}; LATS=${LATS:-"200 0"}; STARTUP=${STARTUP:-1}; PORT=${PORT:-18789}
CASES=${CASES:-"ideal notos recipe distilabel"}
[ -x "$DPY" ] || { echo "no $DPY: distilabel is left out"; DPY=$PY; CASES=${CASES//distilabel/}; }
wants() { case " $CASES " in *" $1 "*) return 0;; esac; return 1; }
OUT=${OUT:-$HERE/results/ultrafeedback-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
URL="http://127.0.0.1:$PORT/v1"
SERVER=""
stop_server() { [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; SERVER=""; }
trap stop_server EXIT

start_server() { # latency_ms
  "$DPY" "$SHARED/fake_openai_server.py" --port "$PORT" --latency-ms "$1" --tokens 64 > "$OUT/server_l$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "$URL/models" && return 0; sleep 0.1; done
  echo "server failed to start"; exit 3
}

case_run() { # tag python script args...
  local tag=$1 py=$2 script=$3; shift 3
  curl -s -X POST "http://127.0.0.1:$PORT/stats/reset" > /dev/null
  "$PY" "$SHARED/measure.py" --out "$OUT/$tag.measure.json" --timeout 1800 --stdout "$OUT/$tag.log" -- \
    "$py" "$script" --base-url "$URL" --out "$OUT/$tag.result.json" "$@" > /dev/null
  echo "$tag: $(cat "$OUT/$tag.result.json" 2>/dev/null) $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("wall=%ss peak_rss=%sMB" % (d["wall_s"], d["peak_tree_rss_mb"]))' "$OUT/$tag.measure.json")"
}

for LAT in $LATS; do
  start_server "$LAT"
  if [ "$STARTUP" = 1 ]; then
    wants notos && case_run "startup_notos_n10_l$LAT" "$PY" "$HERE/ultrafeedback_notos.py" --n 10
    wants recipe && case_run "startup_recipe_n10_l$LAT" "$PY" "$HERE/ultrafeedback_notos.py" --recipe --n 10
    wants distilabel && case_run "startup_distilabel_n10_l$LAT" "$DPY" "$SHARED/distilabel_ultrafeedback.py" --n 10
  fi
  for N in $NS; do
    wants ideal && case_run "ideal_n${N}_l$LAT" "$DPY" "$SHARED/ideal.py" --n "$N" --client aiohttp
    wants notos && case_run "notos_n${N}_l$LAT" "$PY" "$HERE/ultrafeedback_notos.py" --n "$N"
    wants recipe && case_run "recipe_n${N}_l$LAT" "$PY" "$HERE/ultrafeedback_notos.py" --recipe --n "$N"
    wants distilabel && case_run "distilabel_n${N}_l$LAT" "$DPY" "$SHARED/distilabel_ultrafeedback.py" --n "$N"
  done
  stop_server
done
echo "results in $OUT"
