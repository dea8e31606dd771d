#!/usr/bin/env bash
# Frontend cost of tesserad, measured two ways on one machine:
#
#  1. Unary: tesserad's tessera.v1.Inference/Tokenize against tessera-echo-server (a bare gRPC server
#     answering the same call with a fixed reply), same load: h2load (nghttp2-client) with a prepared
#     gRPC frame, and tessera-bench --api tokenize. Prints requests/s of both and tesserad / echo.
#  2. Streaming: inter-token latency through tesserad (tessera.v1 Generate with token ids) against
#     ITL straight from the worker's engine service (tessera.engine.v1 Generate), same prompts, same
#     concurrency, same worker process (tesserad is attached to it with --engine). Prints the
#     difference: the time the frontend adds per streamed token.
#
#   bench/serve/run_frontend_cost.sh [--build build/release] [--model DIR] [--concurrency 16]
#       [--num-prompts 200] [--unary-requests 20000] [--repeats 3] [--threads 0] [--out DIR]
#
# Without --model a small random Llama is made in /tmp/tessera-bench-model (needs .venv numpy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=build/release
MODEL=""
CONC=16
NUM=200
UNARY_N=20000
UNARY_C=16
UNARY_M=8
REPEATS=3
THREADS=0
INPUT_LEN=32
OUTPUT_LEN=32
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --num-prompts) NUM=$2; shift 2 ;;
    --unary-requests) UNARY_N=$2; shift 2 ;;
    --unary-connections) UNARY_C=$2; shift 2 ;;
    --unary-streams) UNARY_M=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --input-len) INPUT_LEN=$2; shift 2 ;;
    --output-len) OUTPUT_LEN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "run_frontend_cost.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
TESSERAD=${TESSERAD:-$BUILD/server/tesserad}
WORKER=${WORKER:-$BUILD/worker/tessera-worker}
BENCH=${BENCH:-$BUILD/bench/serve/tessera-bench}
ECHO_SERVER=${ECHO_SERVER:-$BUILD/bench/serve/tessera-echo-server}
for b in "$TESSERAD" "$WORKER" "$BENCH" "$ECHO_SERVER"; do
  [[ -x "$b" ]] || { echo "run_frontend_cost.sh: missing $b (build it, or set TESSERAD/WORKER/BENCH/ECHO_SERVER)" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/tessera-frontend-cost.XXXXXX)
OUT=${OUT:-$TMP}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

if [[ -z "$MODEL" ]]; then
  MODEL=/tmp/tessera-bench-model
  if [[ ! -f "$MODEL/config.json" ]]; then
    "$ROOT/.venv/bin/python" tools/make_random_llama.py "$MODEL" --hidden 64 --layers 2 --heads 4 --kv-heads 2 \
      --intermediate 128 --tokenizer tests/fixtures/tokenizers/qwen2/tokenizer.json \
      --tokenizer-config tests/fixtures/tokenizers/qwen2/tokenizer_config.json --max-position 4096 >/dev/null
  fi
fi

wait_file() {  # wait_file FILE PID WHAT
  for _ in $(seq 1 600); do
    [[ -s "$1" ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "run_frontend_cost.sh: $3 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "run_frontend_cost.sh: $3 did not start in 60 s" >&2
  exit 1
}

"$WORKER" --model "$MODEL" --port 0 --port_file "$TMP/worker.port" --threads "$THREADS" \
  --exit_with_parent=false 2>"$OUT/worker.log" &
PIDS+=($!)
wait_file "$TMP/worker.port" "${PIDS[-1]}" tessera-worker
WORKER_PORT=$(cat "$TMP/worker.port")
"$TESSERAD" --model "$MODEL" --engine "127.0.0.1:$WORKER_PORT" --host 127.0.0.1 --port 0 --grpc-port 0 \
  --port-file "$TMP/tesserad.ports" 2>"$OUT/tesserad.log" &
PIDS+=($!)
wait_file "$TMP/tesserad.ports" "${PIDS[-1]}" tesserad
GRPC_PORT=$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$TMP/tesserad.ports")
"$ECHO_SERVER" --port 0 --port_file "$TMP/echo.port" 2>"$OUT/echo.log" &
PIDS+=($!)
wait_file "$TMP/echo.port" "${PIDS[-1]}" tessera-echo-server
ECHO_PORT=$(cat "$TMP/echo.port")
echo "worker :$WORKER_PORT  tesserad gRPC :$GRPC_PORT  echo :$ECHO_PORT  model $MODEL  load $(cut -d' ' -f1-3 /proc/loadavg)"

median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2].split("."); [d:=d[x] for x in k]; print(d)' "$1" "$2"; }

# ---- 1. Unary: Tokenize on tesserad vs the echo server ----------------------------------------------
# gRPC frame of TokenizeRequest{text: "hello world"}: flag 0, length 13, field 2 (0x12), length 11.
printf '\x00\x00\x00\x00\x0d\x12\x0bhello world' >"$TMP/tokenize.frame"
h2load_rps() {  # h2load_rps PORT -> req/s
  h2load -n "$UNARY_N" -c "$UNARY_C" -m "$UNARY_M" -d "$TMP/tokenize.frame" -H 'content-type: application/grpc' \
    -H 'te: trailers' "http://127.0.0.1:$1/tessera.v1.Inference/Tokenize" >"$TMP/h2load.txt" 2>&1
  if ! grep -q " 0 failed, 0 errored" "$TMP/h2load.txt" || grep -q " 0 succeeded" "$TMP/h2load.txt"; then
    echo "run_frontend_cost.sh: h2load reported failures:" >&2; cat "$TMP/h2load.txt" >&2; exit 1
  fi
  sed -n 's/^finished in [0-9.]*[a-z]*, \([0-9.]*\) req\/s.*/\1/p' "$TMP/h2load.txt"
}
bench_unary() {  # bench_unary PORT NAME -> req/s
  "$BENCH" --api tokenize --grpc "127.0.0.1:$1" --concurrency "$UNARY_C" --num-prompts "$((UNARY_N / 4))" \
    --input-len 2 --warmup 100 --json "$OUT/unary_$2.json" >"$OUT/unary_$2.txt" 2>&1 ||
    { echo "run_frontend_cost.sh: tessera-bench tokenize on $2 failed" >&2; cat "$OUT/unary_$2.txt" >&2; exit 1; }
  jget "$OUT/unary_$2.json" request_throughput
}
declare -a H_ECHO H_TESS B_ECHO B_TESS P50_ECHO P50_TESS
for r in $(seq 1 "$REPEATS"); do
  H_ECHO+=("$(h2load_rps "$ECHO_PORT")")
  H_TESS+=("$(h2load_rps "$GRPC_PORT")")
  B_ECHO+=("$(bench_unary "$ECHO_PORT" echo)"); P50_ECHO+=("$(jget "$OUT/unary_echo.json" e2el_ms.p50)")
  B_TESS+=("$(bench_unary "$GRPC_PORT" tesserad)"); P50_TESS+=("$(jget "$OUT/unary_tesserad.json" e2el_ms.p50)")
done
he=$(median "${H_ECHO[@]}"); ht=$(median "${H_TESS[@]}")
be=$(median "${B_ECHO[@]}"); bt=$(median "${B_TESS[@]}")
pe=$(median "${P50_ECHO[@]}"); pt=$(median "${P50_TESS[@]}")
echo
echo "== Unary Tokenize, median of $REPEATS =="
printf '%-52s %12s %12s %8s\n' "load" "echo req/s" "tesserad" "ratio"
printf '%-52s %12.0f %12.0f %8.2f\n' "h2load -n $UNARY_N -c $UNARY_C -m $UNARY_M" "$he" "$ht" "$(python3 -c "print($ht/$he)")"
printf '%-52s %12.0f %12.0f %8.2f\n' "tessera-bench --api tokenize --concurrency $UNARY_C" "$be" "$bt" "$(python3 -c "print($bt/$be)")"
printf '%-52s %12.3f %12.3f %8s\n' "  p50 latency (ms), tessera-bench" "$pe" "$pt" "$(python3 -c "print('%+d us' % round(($pt-$pe)*1000))")"

# ---- 2. Streaming: ITL through tesserad vs straight from the engine ---------------------------------
stream_run() {  # stream_run API PORT NAME
  "$BENCH" --api "$1" --grpc "127.0.0.1:$2" --token-ids --concurrency "$CONC" --num-prompts "$NUM" \
    --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" --warmup "$CONC" --seed 1 \
    --json "$OUT/stream_$3.json" >"$OUT/stream_$3.txt" 2>&1 ||
    { echo "run_frontend_cost.sh: tessera-bench $1 failed" >&2; cat "$OUT/stream_$3.txt" >&2; exit 1; }
}
declare -a ITL_E ITL_T ITLP_E ITLP_T TPOT_E TPOT_T TTFT_E TTFT_T
for r in $(seq 1 "$REPEATS"); do
  stream_run engine "$WORKER_PORT" engine
  ITL_E+=("$(jget "$OUT/stream_engine.json" itl_ms.mean)"); ITLP_E+=("$(jget "$OUT/stream_engine.json" itl_ms.p50)")
  TPOT_E+=("$(jget "$OUT/stream_engine.json" tpot_ms.mean)"); TTFT_E+=("$(jget "$OUT/stream_engine.json" ttft_ms.p50)")
  stream_run grpc "$GRPC_PORT" tesserad
  ITL_T+=("$(jget "$OUT/stream_tesserad.json" itl_ms.mean)"); ITLP_T+=("$(jget "$OUT/stream_tesserad.json" itl_ms.p50)")
  TPOT_T+=("$(jget "$OUT/stream_tesserad.json" tpot_ms.mean)"); TTFT_T+=("$(jget "$OUT/stream_tesserad.json" ttft_ms.p50)")
done
echo
echo "== Streaming, concurrency $CONC, $NUM prompts x $INPUT_LEN token ids -> $OUTPUT_LEN tokens, median of $REPEATS =="
printf '%-28s %12s %12s %14s\n' "ms" "engine" "tesserad" "added by frontend"
for row in "ITL mean:ITL_E:ITL_T" "ITL p50:ITLP_E:ITLP_T" "TPOT mean:TPOT_E:TPOT_T" "TTFT p50:TTFT_E:TTFT_T"; do
  IFS=: read -r name ea ta <<<"$row"
  declare -n A="$ea" B="$ta"
  e=$(median "${A[@]}"); t=$(median "${B[@]}")
  printf '%-28s %12.3f %12.3f %14.3f\n' "$name" "$e" "$t" "$(python3 -c "print($t-$e)")"
  unset -n A B
done
echo
echo "raw outputs in $OUT"
