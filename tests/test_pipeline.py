"""End to end on a small sample, in a temporary copy of the repository: DVC, then Prefect."""
import json
import shutil
import re
from graphlib import TopologicalSorter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_repo, run, run_env
from imports import all_modules, code_files, imports_of, module_path
from nlpdag.runs.dag import parse_dot, parse_status, stage_order

SMALL = {"data": {"max_docs": 400}, "tokenise": {"min_count": 2}, "bow": {"min_df": 1},
         "word2vec": {"size": 16, "min_count": 2, "epochs": 2}, "glove": {"size": 16, "epochs": 3},
         "fasttext": {"size": 16, "min_count": 2, "epochs": 2, "bucket": 20000},
         "doc2vec": {"size": 16, "min_count": 2, "epochs": 2, "ngram_epochs": 2}, "evaluate": {"analogy_restrict": 5000},
         "reduce": {"dim": 8, "epochs": 3}, "topics": {"n_topics": 4, "max_features": 300, "epochs": 3},
         "classify": {"models": {"bigru_attention": "gru-bi-attention@word2vec_skipgram"},
                      "baseline_methods": ["word2vec_skipgram", "fasttext"],
                      "hidden": 8, "epochs": 1, "max_len": 60, "batch_size": 32},
         "tsne": {"words": 150, "docs": 60, "perplexity": 10.0, "n_iter": 100}}


def set_params(repo: Path, changes: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for group, values in changes.items():
        params[group].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    set_params(repo, SMALL)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "small sample"], repo)
    out = run(["dvc", "repro"], repo)
    assert "Running stage 'cooccur'" in out.stdout
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)
    return repo


def test_parse_dot_and_order():
    dot = 'strict digraph {\n"a";\n"b@x";\n"c";\n"a" -> "b@x";\n"b@x" -> "c";\n"a" -> "c";\n}\n'
    graph = parse_dot(dot)
    assert graph == {"a": set(), "b@x": {"a"}, "c": {"a", "b@x"}}
    assert stage_order(graph) == ["a", "b@x", "c"]
    assert parse_status('{"dvc.yaml:bow": [], "cooccur": []}') == {"bow", "cooccur"}


def test_every_stage_depends_on_the_code_it_runs():
    """A change to any module a stage imports must rerun the stage, and only those: dvc.yaml lists
    exactly the stage's script and the library modules it imports, transitively."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        module = re.search(r"-m stages\.(\w+)", stage["cmd"]).group(1)
        listed = {d for d in stage["deps"] if d.endswith(".py")}
        assert listed == set(code_files(f"stages.{module}")), name


def test_stages_are_entry_points_over_the_library():
    """stages/ imports only nlpdag (never another stage); flows/ and nlpdag never import stages."""
    for module in all_modules():
        own = {m.split(".")[0] for m in imports_of(module)}
        if module.startswith("stages."):
            assert own <= {"nlpdag"}, module
        else:
            assert "stages" not in own, module


def test_only_the_command_line_imports_flows():
    """flows/ wrap the library; the library gets a flow passed in (prepare_pool, ensure_sweep_deployment),
    so only nlpdag.cli, the outermost layer, imports flows."""
    for module in all_modules():
        if module.startswith("nlpdag.") and not module.startswith("nlpdag.cli"):
            assert not {m for m in imports_of(module) if m.split(".")[0] == "flows"}, module


def test_no_import_circle():
    graph = {m: imports_of(m) for m in all_modules()}
    TopologicalSorter(graph).static_order()  # raises CycleError naming the circle


def test_each_stage_reads_only_its_own_params_schema():
    """A knob of one stage reruns that stage (and what reads its outputs): its code deps hold the
    schemas of the groups dvc.yaml says it reads, and no others."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        groups = {p.split(".")[0] for p in stage["params"] if isinstance(p, str)} - {"seed", "chunk_docs"}
        if {"params.yaml": None} in stage["params"]:  # `check`: the whole file, so every group's schema
            groups = {k for k, v in yaml.safe_load((ROOT / "params.yaml").read_text()).items() if isinstance(v, dict)}
            groups.add("params")  # the cross-group rules
        schemas = {d.removeprefix("nlpdag/config/").removesuffix(".py") for d in stage["deps"]
                   if d.startswith("nlpdag/config/")} - {"base"}
        assert schemas == groups, name


@pytest.mark.slow
def test_repro_writes_every_output_and_second_repro_does_nothing(repo):
    corpus = pd.read_parquet(repo / "data/corpus.parquet")
    assert len(corpus) == 400 and set(corpus["split"]) == {"train", "test"}
    tokens = pd.read_parquet(repo / "data/tokens.parquet")
    assert tokens["doc_id"].tolist() == corpus["doc_id"].tolist()
    vocab = pd.read_parquet(repo / "data/vocab.parquet")
    co = pd.read_parquet(repo / "data/cooccur.parquet")
    assert co["i"].max() < len(vocab) and (co["x"] > 0).all()
    counts = pd.read_parquet(repo / "data/bow/counts.parquet")
    assert set(counts.columns) == {"doc_id", "token_id", "value"}
    embeddings = json.loads((repo / "reports/scores/embeddings.json").read_text())
    assert list(embeddings) == ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow"]
    for method, scores in embeddings.items():
        assert {"analogy_accuracy", "analogy_coverage", "wordsim353_spearman", "simlex999_spearman",
                "vocab_size", "train_seconds"} <= set(scores), method
        header = (repo / f"data/embeddings/{method}.txt").open().readline().split()
        assert header == [str(scores["vocab_size"]), "16"]
    docvecs = pd.read_parquet(repo / "data/docvecs/doc2vec_dbow.parquet")
    assert len(docvecs) == 400 and docvecs["inferred"].sum() == 0  # doc2vec.train_on_all: every text trained
    bow = json.loads((repo / "reports/scores/bow.json").read_text())["models"]["tfidf_logreg"]
    assert 0.5 < bow["accuracy"] <= 1 and set(bow["by_source"]) == {"imdb", "rotten_tomatoes"}
    out = run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date." in out.stdout
    assert "Running stage" not in out.stdout


@pytest.mark.slow
def test_classify_table_and_predict_cli(repo):
    metrics = json.loads((repo / "reports/scores/classify.json").read_text())["models"]
    assert {"tfidf_logreg", "nb_logreg", "nbsvm", "mean@word2vec_skipgram", "idf_mean@fasttext", "docvec@doc2vec_dm",
            "docvec@doc2vec_dm+doc2vec_dbow", "gru-bi-attention@word2vec_skipgram"} <= set(metrics)
    assert metrics["tfidf_logreg"]["accuracy"] == json.loads(
        (repo / "reports/scores/bow.json").read_text())["models"]["tfidf_logreg"]["accuracy"]
    served = json.loads((repo / "reports/classify/summary.json").read_text())["served"]
    assert served["chosen_on"] == "validation accuracy" and served["row"] in metrics
    header = "label\tconfidence\tp_negative\tp_positive\ttext"
    # the default (the served row), baselines by name: Doc2Vec inferring the text's vector, bow's saved model
    for extra in ([], ["--model", "nbsvm"], ["--model", "docvec@doc2vec_dm+doc2vec_dbow"], ["--model", "tfidf_logreg"]):
        out = run(["nlpdag", "predict", "A moving, wonderful film.", "a dull mess", "--repo", str(repo), *extra], repo)
        lines = out.stdout.splitlines()
        row = extra[1] if extra else served["row"]
        assert re.fullmatch(rf"# model: {re.escape(row)} \(validation accuracy [01]\.\d\d\)", lines[0]), lines[0]
        assert lines[1] == header and len(lines) == 4
        label, confidence, p_neg, p_pos, text = lines[2].split("\t")
        assert label in {"negative", "positive"} and 0.5 <= float(confidence) <= 1 and text == "A moving, wonderful film."
        assert abs(float(p_neg) + float(p_pos) - 1) < 0.002
        assert ("near chance" in out.stderr) == (not extra and served["near_chance"])
    bad = run(["nlpdag", "predict", "  ", "--repo", str(repo)], repo, check=False)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: text 1: empty text, nothing to classify"
    unknown = run(["nlpdag", "predict", "fine", "--model", "nope", "--repo", str(repo)], repo, check=False)
    assert unknown.returncode == 2 and "no such classifier" in unknown.stderr and "nbsvm" in unknown.stderr


@pytest.mark.slow
def test_bad_param_stops_the_stage_with_one_line(repo, tmp_path):
    bad = copy_repo(tmp_path)
    set_params(bad, {"cooccur": {"window": 0}})
    proc = run(["python", "-m", "stages.cooccur"], bad, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: params.yaml: cooccur.window: Input should be greater than or "
                                   "equal to 1 (got 0)")
    set_params(bad, {"data": {"path": "data/raw/nope.csv"}, "cooccur": {"window": 5}})
    proc = run(["python", "-m", "stages.ingest"], bad, check=False)
    assert proc.returncode == 2 and "data/raw/nope.csv: corpus file not found" in proc.stderr
    assert not (bad / "data/corpus.parquet").exists()
    assert not list((bad / "data").glob(".*.tmp"))


@pytest.mark.slow
def test_user_corpus_in_raw_folder_is_a_dependency(repo, tmp_path):
    user = copy_repo(tmp_path)
    # a few words each in a seventh of the documents: topics need words that are in fewer than half of them
    texts = [f"{w} {w} movie number {i} plot{i % 7} cast{i % 5}" for i in range(30) for w in ("superb", "dreadful")]
    labels = ["pos", "neg"] * 30
    pd.DataFrame({"body": texts, "y": labels}).to_csv(user / "data/raw/mine.tsv", sep="\t", index=False)
    words = ["superb", "dreadful", "movie"] + [f"w{k}" for k in range(17)]
    (user / "data/raw/vectors.txt").write_text(
        "".join(f"{w} {k % 3} {k % 5} {k % 7}\n" for k, w in enumerate(words)))  # GloVe text format
    set_params(user, {**SMALL, "data": {"path": "data/raw/mine.tsv", "text_column": "body", "label_column": "y"},
                      "tokenise": {"min_count": 1}, "pretrained": {"path": "data/raw/vectors.txt"},
                      "reduce": {"dim": 2, "epochs": 2}})
    run(["dvc", "repro"], user)
    embeddings = json.loads((user / "reports/scores/embeddings.json").read_text())
    assert embeddings["pretrained"]["vocab_size"] == 20
    reduced = json.loads((user / "reports/scores/reduce.json").read_text())
    assert set(reduced["pretrained"]) == {"none", "pca", "ae", "dae", "stacked_ae", "vae"}
    assert json.loads((user / "data/labels.json").read_text()) == ["neg", "pos"]
    metrics = json.loads((user / "reports/scores/bow.json").read_text())["models"]["tfidf_logreg"]
    assert metrics["accuracy"] == 1.0 and "by_source" not in metrics
    with open(user / "data/raw/mine.tsv", "a") as f:
        f.write("another superb one\tpos\n")
    out = run(["dvc", "repro"], user)
    assert "Running stage 'ingest'" in out.stdout


@pytest.mark.slow
def test_experiment_changes_metrics(repo):
    run(["dvc", "exp", "run", "-S", "data.max_docs=200"], repo)
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo).stdout)
    assert diff["reports/metrics/ingest.json"]["docs"] == {"old": 400, "new": 200, "diff": -200}
    assert "tfidf_logreg.accuracy" in diff["reports/metrics/classify.json"]
    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    assert "max_docs" in shown
    run(["dvc", "exp", "apply", "HEAD"], repo, check=False)
    run(["git", "checkout", "--", "."], repo)
    run(["dvc", "checkout", "--force"], repo)


@pytest.mark.slow
def test_a_model_is_a_stage_and_a_display_setting_retrains_nothing(repo):
    """Adding a model to classify.models adds one stage neural@<key> and reruns the join; the model already
    trained stays cached; a display setting of the report reruns the report alone."""
    saved = (repo / "params.yaml").read_text()

    def stale(**changes) -> set[str]:
        set_params(repo, changes)
        try:
            return parse_status(run(["dvc", "status", "--json"], repo).stdout)
        finally:
            (repo / "params.yaml").write_text(saved)

    # `check` validates any change of params.yaml first (a second; its stamp never changes, so nothing follows it)
    assert stale(report={"attention_docs": 2, "tree_docs": 1}) == {"check", "report"}
    more = {**SMALL["classify"]["models"], "lstm_max": "lstm-max@random"}
    assert stale(classify={"models": more}) == {"check", "neural@lstm_max", "classify"}
    assert stale(classify={"nbsvm_C": [0.5]}) == {"check", "classify"}          # a baseline's grid: the join alone
    assert stale(classify={"epochs": 2}) == {"check", "neural@bigru_attention"}  # the recipe: every model stage
    set_params(repo, {"classify": {"models": more}})
    try:
        out = run(["dvc", "repro"], repo).stdout
        assert "Stage 'neural@bigru_attention' didn't change, skipping" in out
        assert "Running stage 'neural@lstm_max'" in out and "Running stage 'classify'" in out
        metrics = json.loads((repo / "reports/metrics/classify.json").read_text())  # the headline: keys, not specs
        assert {"lstm_max", "bigru_attention"} <= set(metrics)
    finally:
        (repo / "params.yaml").write_text(saved)
        run(["git", "reset", "-q", "--hard"], repo)  # dvc.lock and .gitignore files: DVC staged them (autostage)
        run(["git", "clean", "-fdq", "reports"], repo)  # the new model's uncached curve and confusion files
        run(["dvc", "checkout", "--force"], repo)
        for folder in ("data/classify/neural/lstm_max", "data/models/classify/lstm_max"):
            shutil.rmtree(repo / folder, ignore_errors=True)
    assert parse_status(run(["dvc", "status", "--json"], repo).stdout) == set()


@pytest.mark.slow
def test_nlpdag_run_through_prefect(repo, tmp_path):
    env = {**run_env(), "PREFECT_HOME": str(tmp_path / "prefect")}
    set_params(repo, {"cooccur": {"window": 3}})
    proc = run(["nlpdag", "run"], repo / "data", env=env)  # from a sub-folder: the root is found
    assert "ran check, cooccur" in proc.stdout, proc.stdout + proc.stderr  # check: params validated first
    assert "Task run 'bow'" in proc.stderr
    proc = run(["nlpdag", "run", "--repo", str(repo)], tmp_path, env=env)
    assert "ran none" in proc.stdout
    assert json.loads((repo / "reports/scores/cooccur.json").read_text())["nonzeros"] > 0
    set_params(repo, {"cooccur": {"window": 0}})
    proc = run(["nlpdag", "run", "--retries", "0"], repo, env=env, check=False)
    assert proc.returncode == 2  # a user error, found before any stage runs
    assert proc.stderr.splitlines() == [f"error: {repo / 'params.yaml'}: cooccur.window: Input should be greater "
                                        "than or equal to 1 (got 0)"]
    set_params(repo, {"cooccur": {"window": 10}})


def test_nothing_loads_a_pickle():
    """Artefacts on a shared DVC remote must not run code when loaded: no pickle, no gensim
    SaveLoad (`Model.load`), torch.load only with weights_only=True."""
    for module in all_modules():
        source = module_path(module).read_text()
        assert not re.search(r"\bpickle\b|\bjoblib\b|(FastText|Word2Vec|Doc2Vec|KeyedVectors|Phrases)\.load\(", source), module
        for call in re.findall(r"torch\.load\([^)]*\)", source):
            assert "weights_only=True" in call, module


def test_stage_scripts_only_wire_and_modules_stay_readable():
    """A stage script reads its params and calls the library (short); no module past ~400 lines."""
    for module in all_modules():
        lines = len(module_path(module).read_text().splitlines())
        assert lines <= (80 if module.startswith("stages.") else 400), (module, lines)


def test_outside_a_checkout_the_installed_one_is_found(tmp_path):
    """`nlpdag worker` and friends started elsewhere use the checkout nlpdag is installed from."""
    from nlpdag.runs.dag import find_root

    assert find_root(tmp_path) == ROOT
