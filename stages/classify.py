"""DVC stage `classify`: wiring only; the logic is nlpdag.classify (baselines, neural, outputs)."""
from __future__ import annotations

from nlpdag.catalog.classify import NEURAL_DIR
from nlpdag.catalog.ingest import CORPUS
from nlpdag.classify.baselines import representation_seconds, run_baselines, transductive
from nlpdag.classify.dataset import load_dataset
from nlpdag.classify.ensemble import check_members, ensemble_row
from nlpdag.classify.neural import check_specs, read_neural
from nlpdag.classify.outputs import write_outputs
from nlpdag.config.base import StageParams, load_params
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.errors import StageError, cli_main
from nlpdag.evaluation.rows import accuracy_on_test, validation_accuracy
from nlpdag.names import parse_model


def run(params: StageParams, log=print) -> dict:
    p = params.classify
    check_specs(p.models)
    check_members(p.ensemble, p.baselines, p.baseline_methods, list(p.models.values()), p.nb_docvec)
    data = load_dataset()
    if data.train.sum() == 0 or data.test.sum() == 0:
        raise StageError(f"{CORPUS}: needs documents in both the train and the test split")
    stale = sorted({f.name for f in NEURAL_DIR.iterdir() if f.is_dir() and not f.name.startswith(".")} - set(p.models)
                   ) if NEURAL_DIR.is_dir() else []
    if stale:  # outputs of a stage no longer in dvc.yaml stay in the workspace, inside this stage's dependency
        log(f"classify: {NEURAL_DIR}: {', '.join(stale)} not in classify.models (a model taken out): ignored; "
            f"delete {'them' if len(stale) > 1 else 'it'} so that this stage's dependency matches a fresh checkout's")
    results = run_baselines(data, p, params.seed, log)
    for key, spec in p.models.items():  # each trained by its own stage, neural@<key>
        result = read_neural(key, spec, data)
        embedding = parse_model(spec).embedding
        result.info.update(validation_accuracy=round(validation_accuracy(result, data), 4),
                           transductive=transductive(spec, data),
                           representation_seconds=None if embedding.random else representation_seconds(embedding.name))
        results.append(result)
        log(f"classify: {spec}: accuracy {accuracy_on_test(result, data):.4f} ({result.seconds:.1f} s, "
            f"{result.extra['tokens_per_second']:.0f} tokens/s)")
    if p.ensemble:  # fitted on the validation slice's labels only
        results.append(ensemble_row(results, data, p.ensemble, p.ensemble_C, params.seed))
        log(f"classify: {results[-1].name}: accuracy {accuracy_on_test(results[-1], data):.4f}")
    summary = write_outputs(results, data, params.seed, keys={spec: key for key, spec in p.models.items()},
                            tokenise=params.tokenise.model_dump())
    for key, name in summary["winner"].items():
        verdict = (f"winner {name}" if name else f"best {summary['best'][key]}, tied with "
                   f"{', '.join(summary['tied_with'][key])} (McNemar p {summary['p_value'][key]})")
        log(f"classify: {key}: {verdict} (best baseline: {summary['best_baseline'][key]})")
    log(f"classify: chosen on the validation slice: {summary['best_neural']['overall']}")
    if summary.get("served"):
        log(f"classify: nlpdag predict serves {summary['served']['row']} "
            f"(validation accuracy {summary['served']['validation_accuracy']:.4f})")
    return summary


@cli_main
def main() -> None:
    run(load_params(classify=ClassifyParams, tokenise=TokeniseParams))


if __name__ == "__main__":
    main()
