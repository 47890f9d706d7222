"""DVC stage `topics`: wiring only; the logic is nlpdag.models.topics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from nlpdag.catalog import TOPICS, TOPICS_METRICS
from nlpdag.config.base import StageParams, load_params
from nlpdag.config.topics import TopicsParams
from nlpdag.errors import cli_main
from nlpdag.io.tables import write_json, write_table
from nlpdag.io.vectors import Timer
from nlpdag.models.topics import (check_params, fit_autoencoder, fit_nmf, is_stop_word, npmi_coherence,
                                  read_inputs, reconstruction_mse, top_word_ids, topics_frame)
from nlpdag.training.devices import resolve_device
from nlpdag.training.progress import DVCLiveLogger, live


def run(params: StageParams, device: torch.device) -> dict:
    config = params.topics
    matrix, held_out, words = read_inputs(config)
    check_params(config, len(words))
    metrics, frames = {}, []
    for model in ("autoencoder", "nmf"):
        with Timer() as timer:
            if model == "autoencoder":
                with live("topics") as logger:
                    codes, topics, _ = fit_autoencoder(matrix, config, params.seed, str(device), verbose=True,
                                                       callbacks=[DVCLiveLogger(logger, model)])
            else:
                codes, topics = fit_nmf(matrix, config.n_topics, params.seed)
        top = top_word_ids(topics, config.top_words)
        coherence = round(npmi_coherence(held_out, top), 4) if held_out.shape[0] else None
        metrics[model] = {"coherence": coherence, "coherence_on": "test documents",
                          "stop_word_share": round(float(np.mean([is_stop_word(words[i]) for i in top.ravel()])), 4),
                          "reconstruction_mse": float(f"{reconstruction_mse(matrix, codes, topics):.6g}")}
        frames.append(topics_frame(model, topics, words, config.top_words))
        print(f"topics: {model:<11} held-out NPMI {metrics[model]['coherence']}  "
              f"mse {metrics[model]['reconstruction_mse']:.4g}  {timer.seconds:.1f} s", flush=True)
    write_table(pd.concat(frames, ignore_index=True), TOPICS)
    write_json(metrics, TOPICS_METRICS)
    print(f"topics: {matrix.shape[0]} training documents x {matrix.shape[1]} words, {config.n_topics} topics")
    return metrics


@cli_main
def main() -> None:
    params = load_params(topics=TopicsParams)
    device = resolve_device(params.topics.device, "topics.device")
    if device.type == "cpu":
        torch.set_num_threads(1)  # a small model: threads cost more than they give (see stages/reduce.py)
    with threadpool_limits(1):  # NMF's BLAS calls too: on a busy 2-core machine two threads ran 20x slower
        run(params, device)


if __name__ == "__main__":
    main()
