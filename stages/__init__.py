"""The DVC entry points: one short script per stage of dvc.yaml, wiring only (the logic is nlpdag's).

Imported before any stage imports NumPy or PyTorch, so it sizes their BLAS/OpenMP pools: one thread in
every stage, under plain `dvc repro` and `nlpdag run --jobs` alike, because the count changes the
order of float sums (measured: TF-IDF coefficients 1e-15 apart with 2 threads against 1), and a
stage's outputs must not depend on how it was launched. What a stage computes in parallel it asks
for by its own setting: gensim's workers, openTSNE's n_jobs, GloVe's threads, classify.threads
(nlpdag/training/threads.py).
"""
import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"
