#!/usr/bin/env bash
# Compare gunicorn worker models on the write path with wrk; results in docs/OPERATIONS.md.
#
#   bench/gunicorn_workers/run.sh [seconds-per-run] [connections] [embedding-delay-ms]
#
# Two embedding paths: "local" (the in-process ONNX model: CPU) and "io" (the openai provider
# against openai_stub.py answering after a fixed delay: an I/O-bound call like a real API).
# Each run: a fresh gunicorn with the repo's config, 5 s warm-up, then wrk. Needs wrk
# (apt-get install -y wrk). Everything listens on loopback; authentication is off.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-20}
connections=${2:-32}
delay_ms=${3:-100}
configs=${CONFIGS:-"sync:2:1 sync:4:1 gthread:2:4 gthread:2:8 gthread:3:8"}
scenarios=${SCENARIOS:-"local io"}
# Rounds interleave the configurations, so a burst of load from elsewhere on a shared machine
# hits every configuration alike instead of one; report the median of the rounds.
rounds=${ROUNDS:-3}
port=18180
wrk_threads=$((connections < 2 ? 1 : 2))  # wrk needs at least one connection per thread

export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local AUTH_MODE=none
export GUNICORN_BIND=127.0.0.1:$port METRICS_BIND=127.0.0.1:19190 GUNICORN_DRAIN_DELAY_SECONDS=0
DATABASE_URL=$(.venv/bin/python bench/gunicorn_workers/database.py start)
export DATABASE_URL
.venv/bin/python manage.py migrate --noinput >/dev/null

body=$(mktemp)
stub_out=$(mktemp)
cleanup() {
  [ -n "${master:-}" ] && kill "$master" 2>/dev/null && wait "$master" || true
  [ -n "${stub_pid:-}" ] && kill "$stub_pid" 2>/dev/null || true
  .venv/bin/python bench/gunicorn_workers/database.py stop
  rm -f "$body" "$stub_out"
}
trap cleanup EXIT

.venv/bin/python bench/gunicorn_workers/openai_stub.py --delay-ms "$delay_ms" >"$stub_out" &
stub_pid=$!
created=$(date -u -d '1 minute ago' +%Y-%m-%dT%H:%M:%SZ)
cat >"$body" <<JSON
{"name":"rr-web-oom","namespace":"shop","phase":"Completed","createdAt":"$created","correlationId":"bench-1",
 "signalType":"prometheus","signalName":"KubePodOOMKilled","signalNamespace":"shop","targetType":"deployment",
 "targetName":"web","targetNamespace":"shop","reason":"Container exceeded its memory limit"}
JSON
export BENCH_BODY_FILE=$body
sleep 1
BENCH_OPENAI_BASE_URL=$(head -1 "$stub_out")
export BENCH_OPENAI_BASE_URL

# utime + stime, in clock ticks, of a gunicorn master and its workers.
cpu_ticks() {
  cat "/proc/$1/stat" $(pgrep -P "$1" | sed 's|.*|/proc/&/stat|') 2>/dev/null | awk '{s += $14 + $15} END {print s}'
}

echo "# $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$wrk_threads -c$connections -d${duration}s, io delay ${delay_ms} ms"
for round in $(seq "$rounds"); do
for scenario in $scenarios; do
  app=kubernaut_storage.wsgi
  [ "$scenario" = io ] && app=bench.gunicorn_workers.io_embedding_wsgi
  for config in $configs; do
    IFS=: read -r klass workers threads <<<"$config"
    GUNICORN_WORKERS=$workers GUNICORN_THREADS=$threads \
      .venv/bin/gunicorn -c kubernaut_storage/gunicorn_config.py -k "$klass" --threads "$threads" "$app" \
      2>/tmp/bench-gunicorn.log &
    master=$!
    for _ in $(seq 100); do
      curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
      sleep 0.2
    done
    wrk -t"$wrk_threads" -c"$connections" -d5s -s bench/gunicorn_workers/post.lua "http://127.0.0.1:$port/api/v1/audit/remediation" >/dev/null
    cpu_before=$(cpu_ticks "$master")
    result=$(wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --timeout 10s -s bench/gunicorn_workers/post.lua \
      "http://127.0.0.1:$port/api/v1/audit/remediation" | grep '^RESULT')
    cpu_after=$(cpu_ticks "$master")
    requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$result")
    rss_kb=$(ps -o rss= -p "$master" --ppid "$master" | awk '{s+=$1} END {print s}')
    # CPU the service spent per request (master + workers; not wrk, PostgreSQL or the stub):
    # unlike throughput, this hardly moves when other tenants load the machine.
    cpu_ms=$(awk -v t=$((cpu_after - cpu_before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.1f", r ? t * 1000 / hz / r : 0}')
    echo "round=$round $scenario $klass ${workers}x${threads} ${result#RESULT } cpu_ms_per_req=$cpu_ms rss_mb=$((rss_kb / 1024))"
    kill -TERM "$master"
    wait "$master" || true
  done
done
done
