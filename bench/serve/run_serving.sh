#!/usr/bin/env bash
# Serving benchmark matrix: starts tesserad on a model, runs tessera-bench at each concurrency over
# each API, and prints a Markdown table of the medians over the repeats (docs/benchmarks/serving.md).
# Each point first runs a short probe (also the warm-up) to size --num-prompts to about --seconds.
#
#   bench/serve/run_serving.sh [--build build/release] [--model DIR] [--apis "rest grpc"]
#       [--concurrency "1 16 64 256"] [--seconds 15] [--repeats 3] [--input-len 32] [--output-len 32]
#       [--endpoint completions|chat] [--out DIR]
# TESSERAD_ARGS adds flags to tesserad (e.g. "--heartbeat-timeout 30" on a crowded machine).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=build/release
MODEL=""
APIS="rest grpc"
CONCS="1 16 64 256"
SECONDS_PER_POINT=15
REPEATS=3
INPUT_LEN=32
OUTPUT_LEN=32
ENDPOINT=completions
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --apis) APIS=$2; shift 2 ;;
    --concurrency) CONCS=$2; shift 2 ;;
    --seconds) SECONDS_PER_POINT=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --input-len) INPUT_LEN=$2; shift 2 ;;
    --output-len) OUTPUT_LEN=$2; shift 2 ;;
    --endpoint) ENDPOINT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "run_serving.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
TESSERAD=${TESSERAD:-$BUILD/server/tesserad}
BENCH=${BENCH:-$BUILD/bench/serve/tessera-bench}
for b in "$TESSERAD" "$BENCH"; do
  [[ -x "$b" ]] || { echo "run_serving.sh: missing $b (build it, or set TESSERAD/BENCH)" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/tessera-serving.XXXXXX)
OUT=${OUT:-$TMP}
mkdir -p "$OUT"
SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

if [[ -z "$MODEL" ]]; then
  MODEL=/tmp/tessera-bench-model
  if [[ ! -f "$MODEL/config.json" ]]; then
    "$ROOT/.venv/bin/python" tools/make_random_llama.py "$MODEL" --hidden 64 --layers 2 --heads 4 --kv-heads 2 \
      --intermediate 128 --tokenizer tests/fixtures/tokenizers/qwen2/tokenizer.json \
      --tokenizer-config tests/fixtures/tokenizers/qwen2/tokenizer_config.json --max-position 4096 >/dev/null
  fi
fi

# shellcheck disable=SC2086
"$TESSERAD" --model "$MODEL" --host 127.0.0.1 --port 0 --grpc-port 0 --port-file "$TMP/ports" \
  ${TESSERAD_ARGS:-} 2>"$OUT/tesserad.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  [[ -s "$TMP/ports" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "run_serving.sh: tesserad exited" >&2; cat "$OUT/tesserad.log" >&2; exit 1; }
  sleep 0.1
done
HTTP_PORT=$(sed -n 's/.*http=\([0-9]*\).*/\1/p' "$TMP/ports")
GRPC_PORT=$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$TMP/ports")
echo "tesserad HTTP :$HTTP_PORT gRPC :$GRPC_PORT, model $MODEL, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

bench() {  # bench API CONC NUM JSON [extra flags]
  local api=$1 conc=$2 num=$3 json=$4
  shift 4
  local target=(--url "http://127.0.0.1:$HTTP_PORT")
  [[ "$api" == rest ]] || target=(--grpc "127.0.0.1:$GRPC_PORT")
  "$BENCH" --api "$api" "${target[@]}" --endpoint "$ENDPOINT" --concurrency "$conc" --num-prompts "$num" \
    --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" --json "$json" "$@" >"${json%.json}.txt" 2>&1 || true
}
for api in $APIS; do
  for c in $CONCS; do
    probe_n=$((c * 2 > 64 ? c * 2 : 64))
    bench "$api" "$c" "$probe_n" "$OUT/probe_${api}_c$c.json" --seed 999
    num=$(python3 -c "
import json; d = json.load(open('$OUT/probe_${api}_c$c.json'))
print(int(min(50000, max(2 * $c, 64, d['request_throughput'] * $SECONDS_PER_POINT))))")
    for r in $(seq 1 "$REPEATS"); do
      bench "$api" "$c" "$num" "$OUT/${api}_c${c}_r$r.json" --seed "$r"
      echo "$api c=$c run $r: $(python3 -c "import json; d=json.load(open('$OUT/${api}_c${c}_r$r.json')); print(d['completed'], 'ok,', d['failed'], 'failed,', round(d['duration_s'],1), 's')")" >&2
    done
  done
done

python3 - "$OUT" "$APIS" "$CONCS" "$REPEATS" <<'PY'
import json, statistics, sys
out, apis, concs, repeats = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
def med(xs): return statistics.median(xs) if xs else float("nan")
print("| API | conc | prompts/run | failed | req/s | out tok/s | total tok/s | TTFT p50 | TTFT p99 | ITL mean | ITL p50 | ITL p99 | TPOT mean | E2E p50 | E2E p99 | client CPU |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for api in apis:
    for c in concs:
        runs = [json.load(open(f"{out}/{api}_c{c}_r{r}.json")) for r in range(1, repeats + 1)]
        g = lambda f: med([f(d) for d in runs])
        failed = sum(d["failed"] for d in runs)
        errs = {}
        for d in runs:
            for k, v in d["errors"].items(): errs[k] = errs.get(k, 0) + v
        fail = f"{failed}" + (" (" + ", ".join(f"{k}: {v}" for k, v in errs.items()) + ")" if errs else "")
        print(f"| {api} | {c} | {runs[0]['num_prompts']} | {fail} | {g(lambda d: d['request_throughput']):.1f} | "
              f"{g(lambda d: d['output_throughput']):.0f} | {g(lambda d: d['total_token_throughput']):.0f} | "
              f"{g(lambda d: d['ttft_ms']['p50']):.2f} | {g(lambda d: d['ttft_ms']['p99']):.2f} | "
              f"{g(lambda d: d['itl_ms']['mean']):.3f} | {g(lambda d: d['itl_ms']['p50']):.3f} | "
              f"{g(lambda d: d['itl_ms']['p99']):.2f} | {g(lambda d: d['tpot_ms']['mean']):.3f} | "
              f"{g(lambda d: d['e2el_ms']['p50']):.1f} | {g(lambda d: d['e2el_ms']['p99']):.1f} | "
              f"{g(lambda d: d['client_cpu_percent']):.0f}% |")
print(f"\n(times in ms; medians over {repeats} runs; failed = sum over the runs; raw JSON in {out})")
PY
