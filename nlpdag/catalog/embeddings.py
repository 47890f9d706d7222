"""What the embedding stages write (word2vec@<arch>, glove, fasttext, doc2vec@<mode>, pretrained), and
their method names: one stage (or foreach item) each, a file each under EMBEDDINGS_DIR."""
from pathlib import Path

# Methods with word vectors (evaluated, reduced, fed to the classifiers). doc2vec@ngram learns document
# vectors only: its word table is empty and it is none of these.
METHODS = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow", "pretrained"]
DOC2VEC_MODES = ["dm", "dbow", "ngram"]

EMBEDDINGS_DIR = Path("data/embeddings")  # <method>.parquet (+ .txt in word2vec format)
DOCVECS_DIR = Path("data/docvecs")        # doc2vec's document vectors: doc2vec_<mode>.parquet
DOC2VEC_SETTINGS = "doc2vec.json"         # in each doc2vec_<mode>/: settings and the weights' fingerprint
FASTTEXT_MODEL = Path("data/models/fasttext.bin")   # Facebook's binary format
TRAIN_DIR = Path("reports/train")         # per method: training time, loss, settings
GLOVE_LOSS = Path("reports/plots/glove_loss.csv")


def docvecs_path(mode: str) -> Path:
    """Doc2Vec's document vectors of a mode (dm, dbow)."""
    return DOCVECS_DIR / f"doc2vec_{mode}.parquet"


def doc2vec_model_dir(mode: str) -> Path:
    """Doc2Vec's saved model of a mode (dm, dbow): settings, vocabulary and weights as plain data."""
    return Path(f"data/models/doc2vec_{mode}")
