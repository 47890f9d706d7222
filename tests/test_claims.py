"""The course's claims (nlpdag/report/claims.py): each verdict follows from the numbers as stated."""
from nlpdag.names import human
from nlpdag.report.claims import (CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, SUPPORTED, check_claims,
                                  long_documents_claim, wilson)


def test_human_names_speak_the_course_s_language():
    assert human("word2vec_cbow") == "word2vec CBOW" and human("doc2vec_dbow") == "Doc2Vec PV-DBOW"
    assert human("glove__stacked_ae") == "GloVe, reduced by stacked auto-encoder"
    assert human("lstm-bi-attention@word2vec_skipgram") == "bidirectional LSTM, attention pooling, on word2vec skip-gram"
    assert human("docvec@doc2vec_dm+doc2vec_dbow") == "document vectors + logistic regression, on Doc2Vec PV-DM + Doc2Vec PV-DBOW"
    assert human("something_else") == "something_else"


def emb(cbow_s, skip_s, sem, syn, n=2000):
    return {"word2vec_cbow": {"train_seconds": cbow_s, "analogy_accuracy": (sem[0] + syn[0]) / 2,
                         "analogy_semantic": {"accuracy": sem[0], "n": n}, "analogy_syntactic": {"accuracy": syn[0], "n": n}},
            "word2vec_skipgram": {"train_seconds": skip_s, "analogy_accuracy": (sem[1] + syn[1]) / 2,
                             "analogy_semantic": {"accuracy": sem[1], "n": n},
                             "analogy_syntactic": {"accuracy": syn[1], "n": n}},
            "glove": {"analogy_accuracy": 0.06, "analogy_semantic": {"accuracy": 0.05, "n": n},
                      "analogy_syntactic": {"accuracy": 0.07, "n": n}},
            "fasttext": {"unseen_words": {"typos": 400, "typo_top10": 0.8, "examples": [["goood", "good", True]]}}}


def test_verdicts_follow_the_intervals():
    claims = check_claims(emb(30, 100, sem=(0.10, 0.20), syn=(0.20, 0.10)), {"test_token_coverage": 0.97}, {}, {})
    verdict = {c.claim: c.verdict for c in claims}
    assert verdict["CBOW trains faster than skip-gram"] == SUPPORTED
    assert verdict["Skip-gram is better on semantic analogies, CBOW on syntactic ones"] == SUPPORTED
    assert verdict["FastText gives useful vectors to unseen words (character n-grams)"] == SUPPORTED
    assert verdict["GloVe is strong on analogies"] == CONTRADICTED
    assert verdict["Negative sampling and subsampling of frequent words make word2vec better and faster"] == NOT_MEASURED
    assert all(c.how for c in claims if c.verdict == NOT_MEASURED)
    # overlapping intervals: no verdict either way; a timing ratio within 0.8-1.25 is noise, not a verdict
    close = {c.claim: c for c in check_claims(emb(100, 98, sem=(0.10, 0.105), syn=(0.20, 0.195)), {}, {}, {})}
    assert close["CBOW trains faster than skip-gram"].verdict == NOT_MEASURED
    assert "within the 0.8-1.25 ratio" in close["CBOW trains faster than skip-gram"].measurement
    assert close["Skip-gram is better on semantic analogies, CBOW on syntactic ones"].verdict == INCONCLUSIVE


def test_no_verdict_from_noise():
    """A timing claim needs both runs of at least a second and a ratio outside 0.8-1.25; a null score
    (evaluate's "too little evidence") leaves its claim not measured, never a verdict."""
    from nlpdag.report.claims import glove_claim, speed_claim, tally

    for cbow, skip in ((0.0, 0.0), (0.3, 2.0), (2.0, 0.9)):
        claim = speed_claim(emb(cbow, skip, sem=(0.1, 0.2), syn=(0.2, 0.1)))
        assert claim.verdict == NOT_MEASURED and "too short to time" in claim.measurement and claim.how
    assert speed_claim(emb(1.0, 1.3, sem=(0.1, 0.2), syn=(0.2, 0.1))).verdict == SUPPORTED   # 0.77x
    assert speed_claim(emb(2.6, 2.0, sem=(0.1, 0.2), syn=(0.2, 0.1))).verdict == CONTRADICTED  # 1.3x
    assert speed_claim(emb(2.4, 2.0, sem=(0.1, 0.2), syn=(0.2, 0.1))).verdict == NOT_MEASURED  # 1.2x
    assert speed_claim({}).verdict == NOT_MEASURED
    null = emb(30, 100, sem=(0.10, 0.20), syn=(0.20, 0.10))
    null["word2vec_cbow"]["analogy_semantic"]["accuracy"] = None
    null["glove"]["analogy_accuracy"] = None
    verdict = {c.claim: c for c in check_claims(null, {}, {}, {})}
    halves = verdict["Skip-gram is better on semantic analogies, CBOW on syntactic ones"]
    assert halves.verdict == NOT_MEASURED and "too few answerable semantic analogies" in halves.measurement
    assert glove_claim(null).verdict == NOT_MEASURED and "null" in glove_claim(null).measurement
    models = {"lstm-bi-attention@glove": {"accuracy": None, "accuracy_ci": None},
              "lstm-bi-max@glove": {"accuracy": 0.8, "accuracy_ci": [0.79, 0.81]}}
    assert verdict_of(check_claims({}, {}, {}, {"models": models}), "Attention helps") == NOT_MEASURED
    counts = tally(check_claims(null, {}, {}, {}))
    assert set(counts) == {SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED} and sum(counts.values()) == 14


def verdict_of(claims, prefix: str) -> str:
    return next(c.verdict for c in claims if c.claim.startswith(prefix))


def test_autoencoder_and_neural_claims():
    reduce = {"glove": {"none": {"analogy_accuracy": 0.1, "wordsim353_spearman": 0.2, "simlex999_spearman": None},
                        "pca": {"analogy_accuracy": 0.1, "wordsim353_spearman": 0.2, "simlex999_spearman": 0.1},
                        "ae": {"analogy_accuracy": 0.05, "wordsim353_spearman": 0.1, "simlex999_spearman": 0.05}}}
    def row(acc, ci, bands=None, grads=None):
        return {"accuracy": acc, "accuracy_ci": ci, "by_length": bands or {}, "gradients": grads}
    grads = {"steps": 800, "median": 0.5, "max": 9.0, "clip": 1.0, "clipped_share": 0.02}
    models = {"lstm-bi-attention@glove": row(0.90, [0.89, 0.91], {"1-50 tokens": {"accuracy": 0.85, "n": 2000},
                                                                   "400-900 tokens": {"accuracy": 0.92, "n": 2000}}, grads),
              "rnn-bi-attention@glove": row(0.80, [0.79, 0.81], {"1-50 tokens": {"accuracy": 0.84, "n": 2000},
                                                                  "400-900 tokens": {"accuracy": 0.70, "n": 2000}}),
              "lstm-bi-max@glove": row(0.895, [0.885, 0.905])}
    verdict = {c.claim: c for c in check_claims({}, {}, reduce, {"models": models})}
    assert verdict["Auto-encoders improve word vectors whatever the method"].verdict == CONTRADICTED
    assert verdict["LSTMs cope with long documents better than plain RNNs (vanishing gradients)"].verdict == SUPPORTED
    assert verdict["Attention helps (attention pooling against max pooling)"].verdict == INCONCLUSIVE
    clip = verdict["Gradient clipping tames exploding gradients (backprop through time)"]
    assert clip.verdict == INCONCLUSIVE and "max 9.00" in clip.measurement and "classify.clip=0" in clip.how
    assert long_documents_claim({"lstm-bi-attention@glove": models["lstm-bi-attention@glove"]}).verdict == NOT_MEASURED


def test_wilson_interval():
    lo, hi = wilson(0.5, 100)
    assert 0.40 < lo < 0.41 and 0.59 < hi < 0.60 and wilson(0.0, 0) == (0.0, 1.0)


def test_the_ensemble_claim_needs_a_significant_win_in_every_scope():
    from nlpdag.names import split_members
    from nlpdag.report.claims import ensemble_claim

    row = "ensemble"
    assert split_members("nbsvm+lstm-max@glove+docvec@doc2vec_dm+doc2vec_dbow") == [
        "nbsvm", "lstm-max@glove", "docvec@doc2vec_dm+doc2vec_dbow"]
    assert human(row) == "ensemble (logistic regression over its members' log-odds)"
    models = {row: {"kind": "ensemble", "accuracy": 0.9, "by_source": {"imdb": {"accuracy": 0.93}},
                    "ensemble": {"drop_one": {"nbsvm": 0.012}}}, "nbsvm": {"kind": "baseline", "accuracy": 0.88}}
    won = {"best": {"overall": row, "imdb": row}, "winner": {"overall": row, "imdb": row}}
    claim = ensemble_claim(models, won)
    assert claim.verdict == SUPPORTED and "NBSVM (naive-Bayes features + SVM) +1.2 pts" in claim.measurement
    assert "IMDB: the ensemble is best" in claim.measurement
    tied = {**won, "winner": {"overall": row, "imdb": None}, "runner_up": {"imdb": "nbsvm"}}
    assert ensemble_claim(models, tied).verdict == INCONCLUSIVE
    lost = {"best": {"overall": "nbsvm", "imdb": row}, "winner": {"overall": "nbsvm", "imdb": None}}
    assert ensemble_claim(models, lost).verdict == CONTRADICTED
    assert ensemble_claim({"nbsvm": models["nbsvm"]}, won).verdict == NOT_MEASURED


def test_family_claims_follow_the_paired_tests():
    from nlpdag.report.claims import self_attention_claim, tree_claim

    def test(gain, p):
        return {"accuracy_a": 0.8 + gain, "accuracy_b": 0.8, "gain": gain, "p_value": p, "significant": p < 0.05, "n": 100}

    tree = {"a": "treelstm-rae@glove", "b": "lstm-bi-attention@glove", "short_source": "rotten_tomatoes",
            "scopes": {"overall": test(-0.05, 0.001), "rotten_tomatoes": test(0.04, 0.01)}}
    claim = tree_claim({"versus": {"tree_vs_recurrent": tree}})
    assert claim.verdict == "supported" and "Rotten Tomatoes: 84.0% against 80.0% (+4.0 pts, McNemar p 0.01)" in claim.measurement
    assert "on the source with the shortest texts: Rotten Tomatoes)" in claim.claim
    assert "overall" not in claim.measurement  # the short source only
    tree["scopes"]["rotten_tomatoes"] = test(0.04, 0.2)
    assert tree_claim({"versus": {"tree_vs_recurrent": tree}}).verdict == "inconclusive"
    tree["scopes"]["rotten_tomatoes"] = test(-0.04, 0.01)
    assert tree_claim({"versus": {"tree_vs_recurrent": tree}}).verdict == "contradicted"
    assert tree_claim({}).verdict == "not measured" and "treelstm-rae" in tree_claim({}).how
    attention = {"a": "transformer-2x128@glove", "b": "lstm-bi-attention@glove",
                 "scopes": {"overall": test(0.01, 0.3), "imdb": test(0.02, 0.04)}}
    claim = self_attention_claim({"versus": {"transformer_vs_recurrent": attention}})
    assert claim.verdict == "inconclusive" and "overall" in claim.measurement and "IMDB" in claim.measurement
    assert self_attention_claim({}).verdict == "not measured"
    assert human("treelstm-rae@glove") == "Tree-LSTM over recursive auto-encoder trees, on GloVe"
    assert human("recnn-left@random") == "recursive NN over left-branching trees, on random initialisation"
    assert human("transformer-2x128@word2vec_skipgram") == ("Transformer encoder (2 layers of width 128), "
                                                             "on word2vec skip-gram")


def test_how_to_measure_adds_a_model_to_the_classify_models_mapping():
    """A claim the run cannot judge says how to measure it: one more <key>: <spec> in classify.models
    (a new neural@<key> stage), a command valid under the params schema."""
    import re

    from nlpdag.config.params import parse_params
    from nlpdag.report.claims import attention_claim, self_attention_claim, tree_claim

    for claim in (tree_claim({}), self_attention_claim({}), long_documents_claim({}), attention_claim({})):
        assert claim.verdict == NOT_MEASURED
        match = re.fullmatch(r"dvc exp run -S '\+classify\.models\.([\w-]+)=([^']+)'", claim.how)
        assert match, claim.how
        key, spec = match.groups()
        assert parse_params({"classify": {"models": {key: spec}}}).classify.models == {key: spec}


def test_learned_and_dv_ngram_claims_follow_the_paired_tests():
    from nlpdag.report.claims import dv_ngram_claim, learned_claim

    def test(gain, p):
        return {"accuracy_a": 0.9 + gain, "accuracy_b": 0.9, "gain": gain, "p_value": p, "significant": p < 0.05, "n": 100}

    learned = {"a": "nb_docvec@doc2vec_ngram", "b": "nbsvm", "transductive": True,
               "scopes": {"overall": test(0.01, 0.01), "imdb": test(0.012, 0.02)},
               "by_docvec": {"doc2vec_ngram": {"scopes": {"overall": test(0.01, 0.01)}},
                             "doc2vec_dbow": {"scopes": {"overall": test(0.002, 0.6)}}}}
    claim = learned_claim({"versus": {"learned_vs_ngrams": learned}})
    assert claim.verdict == SUPPORTED and "IMDB: 91.2% against 90.0% (+1.2 pts, McNemar p 0.02)" in claim.measurement
    assert "Doc2Vec DV-ngram (PV-DBOW over words and n-grams) +1.0 pts (p 0.01)" in claim.measurement
    assert "Doc2Vec PV-DBOW +0.2 pts (p 0.6)" in claim.measurement and "† its vectors" in claim.measurement
    # `overall` is the primary test; a source with less power that does not separate them is named
    learned["scopes"]["imdb"] = test(0.012, 0.2)
    claim = learned_claim({"versus": {"learned_vs_ngrams": learned}})
    assert claim.verdict == SUPPORTED and "; not significant on IMDB alone" in claim.measurement
    learned["scopes"]["overall"] = test(0.01, 0.08)
    assert learned_claim({"versus": {"learned_vs_ngrams": learned}}).verdict == INCONCLUSIVE
    learned["scopes"] = {"overall": test(0.01, 0.01), "imdb": test(0.02, 0.001), "rotten_tomatoes": test(-0.03, 0.01)}
    assert learned_claim({"versus": {"learned_vs_ngrams": learned}}).verdict == CONTRADICTED
    assert learned_claim({}).verdict == NOT_MEASURED and "nb_docvec" in learned_claim({}).how
    ngram = {"a": "docvec@doc2vec_ngram", "b": "docvec@doc2vec_dbow", "scopes": {"overall": test(-0.02, 0.001)}}
    claim = dv_ngram_claim({"versus": {"ngram_vs_word_docvecs": ngram}})
    assert claim.verdict == CONTRADICTED and claim.measurement.startswith(
        "document vectors + logistic regression, on Doc2Vec DV-ngram")
    assert human("nb_docvec@doc2vec_dbow") == ("NB-weighted n-grams + document vectors in one logistic regression, "
                                               "on Doc2Vec PV-DBOW")
