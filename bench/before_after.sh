#!/usr/bin/env bash
# Two notos checkouts side by side in one sitting, alternated: the engine overhead and the
# UltraFeedback-shaped workload (beside the raw-aiohttp ideal) at 200 ms and 0 ms.
#
#   git worktree add /tmp/before <commit>
#   BEFORE=/tmp/before bash bench/before_after.sh
#
# Needs ../shared/bench. Only the server started here is stopped, by its PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BEFORE=${BEFORE:?set BEFORE to the other checkout}
SH=${SHARED:-$ROOT/../shared/bench}
PY=$ROOT/.venv/bin/python
PORT=${PORT:-18791}; URL=http://127.0.0.1:$PORT/v1; RUNS=${RUNS:-2}; N=${N:-4000}
OUT=${OUT:-$HERE/results/before-after-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
SERVER=""
stop_server() { [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; SERVER=""; }
trap stop_server EXIT

for i in $(seq 1 "$RUNS"); do
  for side in before after; do
    src=$ROOT; [ "$side" = before ] && src=$BEFORE
    echo "engine $side run $i: $(PYTHONPATH=$src/src "$PY" "$src/bench/engine_overhead.py" --rows 100000 --batch-size 1000 \
      --resume-check 2>&1 | grep -E '^(engine|resume) ' | cut -c1-160 | tr '\n' ' ')"
  done
done

for LAT in 200 0; do
  "$PY" "$SH/fake_openai_server.py" --port "$PORT" --latency-ms "$LAT" --tokens 64 > "$OUT/server_$LAT.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "$URL/models" && break; sleep 0.1; done
  for i in $(seq 1 "$RUNS"); do
    for side in ideal before after; do
      case $side in
        ideal) cmd=("$PY" "$SH/ideal.py" --n "$N" --client aiohttp);;
        before) cmd=(env "PYTHONPATH=$BEFORE/src" "$PY" "$BEFORE/bench/ultrafeedback_notos.py" --n "$N");;
        after) cmd=("$PY" "$HERE/ultrafeedback_notos.py" --n "$N");;
      esac
      tag=$side-l$LAT-$i
      "$PY" "$SH/measure.py" --out "$OUT/$tag.measure.json" --timeout 900 --stdout "$OUT/$tag.log" -- \
        "${cmd[@]}" --base-url "$URL" --out "$OUT/$tag.json" > /dev/null
      echo "uf $tag: $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("wall=%ss peak_rss=%sMB" % (d["wall_s"], d["peak_tree_rss_mb"]))' "$OUT/$tag.measure.json") valid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("valid_ratings_rows"))' "$OUT/$tag.json")"
    done
  done
  stop_server
done
echo "results in $OUT"
