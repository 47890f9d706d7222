"""DVC stage `classify`: wiring only; the logic is nlpdag.classify.train."""
from __future__ import annotations

from nlpdag.catalog.ingest import CORPUS

from nlpdag.catalog.tokenise import VOCAB

# TODO SPECIAL ['LIVE_DIR']
from nlpdag.classify.dataset import load_dataset
from nlpdag.classify.ensemble import check_members, ensemble_row
from nlpdag.classify.outputs import accuracy_on_test, write_outputs
from nlpdag.classify.train import check_embedding, parse_spec, run_baselines, train_neural
from nlpdag.config.base import StageParams, load_params
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.errors import StageError, cli_main, involving
from nlpdag.io.tables import read_frame, write_json
from nlpdag.training import distributed as dd
from nlpdag.training.devices import resolve_device
from nlpdag.training.progress import live


def run(params: StageParams, log=print) -> dict:
    p = params.classify
    if not dd.is_main():
        log = lambda *args, **kwargs: None  # noqa: E731 - one voice in the log
    for spec in p.models:
        check_embedding(parse_spec(spec)["embedding"])
    for method in p.baseline_methods:
        check_embedding(method)
    check_members(p.ensemble, p.baselines, p.baseline_methods, p.models)
    device = resolve_device(p.device, "classify.device")
    data = load_dataset()
    if data.train.sum() == 0 or data.test.sum() == 0:
        raise StageError(f"{CORPUS}: needs documents in both the train and the test split")
    results = run_baselines(data, p, params.seed, log) if dd.is_main() else []
    vocab = read_frame(VOCAB, columns=["token"])["token"].tolist()
    models = {}
    with live("classify") as logger:  # every model's epochs, for dvc exp show / dvc plots
        for curve in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):  # dvc.yaml's, even if none trains
            write_json([], LIVE_DIR / "classify/plots/custom" / f"{curve}.json")
        for spec in p.models:
            with involving(f"classify.models: {spec}"):
                result, model, saved = train_neural(spec, data, vocab, p, params.seed, device, log, logger)
            if result is None:
                continue
            saved["tokenise"] = params.tokenise.model_dump()
            models[spec] = (model, saved)
            results.append(result)
            log(f"classify: {spec}: accuracy {accuracy_on_test(result, data):.4f} ({result.seconds:.1f} s, "
                f"{result.extra['tokens_per_second']:.0f} tokens/s)")
    if p.ensemble and dd.is_main():  # fitted on the validation slice's labels only
        results.append(ensemble_row(results, data, p.ensemble, p.ensemble_C, params.seed))
        log(f"classify: {results[-1].name}: accuracy {accuracy_on_test(results[-1], data):.4f}")
    # The broadcast also holds the other ranks until rank 0 has written everything.
    summary = dd.broadcast(write_outputs(results, models, data, p, params.seed) if dd.is_main() else None)
    for key, name in summary["winner"].items():
        verdict = (f"winner {name}" if name else f"best {summary['best'][key]}, tied with "
                   f"{', '.join(summary['tied_with'][key])} (McNemar p {summary['p_value'][key]})")
        log(f"classify: {key}: {verdict} (best baseline: {summary['best_baseline'][key]})")
    log(f"classify: chosen on the validation slice: {summary['best_neural']['overall']}")
    return summary


@cli_main
def main() -> None:
    with dd.setup():
        run(load_params(classify=ClassifyParams, tokenise=TokeniseParams))


if __name__ == "__main__":
    main()
