#!/usr/bin/env bash
# Run HERE before the GPU check (bench/gpu.sh): fills the git-excluded folders that travel with the tree,
#   .gpu/  the inputs of parts 2-3 (data/corpus, tokens, vocab, labels, word2vec_skipgram vectors) and
#          cpu_reference.json (the CPU figures of the last full run, read from DVC outputs the device lacks);
#   .whl/  wheels of packages the device lacks: none are needed by parts 1-3 (they import no gensim,
#          pydantic, dvclive, dvc or prefect; bench/gpu.sh's smoke run checks that), so it stays empty
#          unless WHEELS="name==version ..." names some (cp312 manylinux / py3-none-any, --no-deps);
# then prints what travels (tracked + untracked-not-ignored files + .whl + .gpu) and fails past LIMIT_MIB (60).
#
#   bash bench/gpu_prepare.sh            then: run(command="bash bench/gpu.sh", carry=[".gpu", ".whl"])
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv/bin/python}
LIMIT_MIB=${LIMIT_MIB:-60}
WHEELS=${WHEELS:-}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"; touch "$exclude"
for pattern in /.whl/ /.gpu/; do
  grep -qxF "$pattern" "$exclude" || echo "$pattern" >> "$exclude"
done

# .gpu/: the inputs, copied (not linked: links do not travel), with the same relative paths as in the repo.
inputs=(data/corpus.parquet data/tokens.parquet data/vocab.parquet data/labels.json data/embeddings/word2vec_skipgram.parquet)
for f in "${inputs[@]}"; do
  [ -f "$f" ] || { echo "missing $f (run the pipeline first: make run / dvc repro)"; exit 1; }
  mkdir -p ".gpu/$(dirname "$f")"
  cp -p "$f" ".gpu/$f"
done
# Nothing else under .gpu/ (e.g. left from an older preparation).
find .gpu -type f | while read -r f; do
  keep=0; for g in "${inputs[@]}" cpu_reference.json; do [ "$f" = ".gpu/$g" ] && keep=1; done
  [ "$keep" = 1 ] || { echo "removing stale $f"; rm -f "$f"; }
done
"$PY" bench/gpu_parts.py reference --out .gpu/cpu_reference.json

# .whl/: only what WHEELS names.
mkdir -p .whl
if [ -n "$WHEELS" ]; then
  # shellcheck disable=SC2086
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $WHEELS
fi
echo ".whl/: $(find .whl -type f -name '*.whl' | wc -l) wheel(s)$( [ -z "$WHEELS" ] && echo ' (none needed: parts 1-3 import only what the device has)')"

# What travels: tracked files (as they are in the working tree), untracked files git does not ignore, .whl, .gpu.
size_of_list() { tr '\n' '\0' | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files | while read -r f; do [ -f "$f" ] && [ ! -L "$f" ] && echo "$f"; done | size_of_list)
untracked=$(git ls-files --others --exclude-standard | size_of_list)
whl=$(find .whl -type f | size_of_list)
gpu=$(find .gpu -type f | size_of_list)
total=$(( tracked + untracked + whl + gpu ))
mib() { awk "BEGIN{printf \"%.1f\", $1 / 1048576}"; }
echo "travels: tracked $(mib "$tracked") MiB + untracked (not ignored) $(mib "$untracked") MiB + .whl $(mib "$whl") MiB + .gpu $(mib "$gpu") MiB = $(mib "$total") MiB (limit ${LIMIT_MIB} MiB; the tool's 64)"
find .gpu -type f -exec du -h {} + | sort -k2
if (( total >= LIMIT_MIB * 1048576 )); then
  echo "TOO BIG: $(mib "$total") MiB >= ${LIMIT_MIB} MiB"; exit 1
fi
