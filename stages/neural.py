"""DVC stage `neural@<key>`: one model of classify.models; the logic is nlpdag.classify.neural."""
from __future__ import annotations

import sys

from nlpdag.catalog.tokenise import VOCAB
from nlpdag.classify.dataset import load_dataset
from nlpdag.classify.neural import train_model
from nlpdag.config.base import StageParams, load_params
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.errors import StageError, cli_main, involving
from nlpdag.io.tables import read_frame
from nlpdag.training import distributed as dd
from nlpdag.training.progress import live
from nlpdag.training.threads import use_threads


def run(params: StageParams, key: str, log=print) -> dict | None:
    p = params.classify
    if key not in p.models:
        raise StageError(f"params.yaml: classify.models: no model {key!r}; keys: {', '.join(p.models) or 'none'}")
    if not dd.is_main():
        log = lambda *args, **kwargs: None  # noqa: E731 - one voice in the log
    data = load_dataset()
    if data.train.sum() == 0 or data.test.sum() == 0:
        raise StageError("data/corpus.parquet: needs documents in both the train and the test split")
    vocab = read_frame(VOCAB, columns=["token"])["token"].tolist()
    spec = p.models[key]
    use_threads(p.threads)
    with live(f"neural/{key}") as logger, involving(f"classify.models.{key}: {spec}"):
        info = train_model(key, spec, data, vocab, p.recipe(), params.seed, params.tokenise.model_dump(), log, logger)
    if info is not None:
        log(f"neural@{key}: {spec}: trained in {info['seconds']:.1f} s ({info['tokens_per_second']:.0f} tokens/s), "
            f"best epoch {info['epochs']}")
    return info


@cli_main
def main() -> None:
    key = sys.argv[1] if len(sys.argv) > 1 else ""
    with dd.setup():
        run(load_params(classify=ClassifyParams, tokenise=TokeniseParams), key)


if __name__ == "__main__":
    main()
