"""DVC stage `reduce`: wiring only; the logic is nlpdag.embeddings.reduce."""
from __future__ import annotations

import logging

import torch
from threadpoolctl import threadpool_limits

from nlpdag.catalog import REDUCE_METRICS, check_methods
from nlpdag.config.base import StageParams, load_params
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.embeddings.reduce import check_dim, load_inputs, reduce_method, write_loss_csv
from nlpdag.errors import cli_main
from nlpdag.io.tables import write_json
from nlpdag.io.vectors import Timer
from nlpdag.training.devices import resolve_device
from nlpdag.training.progress import live


def run(params: StageParams, device: torch.device) -> dict:
    config = params.reduce
    inputs = {}
    for method in config.methods:  # every input checked before anything is trained or written
        loaded = load_inputs(method)
        if loaded is None:
            print(f"reduce: {method} skipped (no vectors)")
            continue
        check_dim(method, loaded[1].shape[1], len(loaded[0]), config)
        inputs[method] = loaded
    metrics, rows = {}, []
    with live("reduce") as logger, Timer() as timer:
        for method, (tokens, matrix) in inputs.items():
            metrics[method], method_rows = reduce_method(method, tokens, matrix, config, params.evaluate,
                                                         params.seed, str(device), live=logger)
            rows += method_rows
    write_loss_csv(rows)
    write_json(metrics, REDUCE_METRICS)
    print(f"reduce: {len(metrics)} methods x {len(config.reducers)} reducers on {device} in {timer.seconds:.1f} s")
    return metrics


@cli_main
def main() -> None:
    logging.getLogger("gensim").setLevel(logging.WARNING)
    params = load_params(reduce=ReduceParams, evaluate=EvaluateParams)
    check_methods(params.reduce.methods, "reduce.methods", reduced=False)
    device = resolve_device(params.reduce.device, "reduce.device")
    if device.type == "cpu":
        # The models are small: one thread spares the synchronisation at every tiny operation, which
        # on a busy 2-core machine made two threads up to 20x slower than one.
        torch.set_num_threads(1)
    with threadpool_limits(1):  # the evaluation's BLAS products too (faster single-threaded here)
        run(params, device)


if __name__ == "__main__":
    main()
