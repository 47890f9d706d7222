"""DVC stage `glove`: wiring only; the logic is nlpdag.embeddings.glove."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.glove import GloveParams
from nlpdag.embeddings.glove import Glove, METHOD, check_inputs, read_inputs, write_loss_csv
from nlpdag.errors import cli_main
from nlpdag.io.vectors import Timer, write_train_info, write_vectors
from nlpdag.training import distributed as dd
from nlpdag.training.devices import resolve_device
from nlpdag.training.progress import EpochProgress, live
from nlpdag.training.threads import resolve_threads


def run(params) -> None:
    config = params.glove
    device = resolve_device(config.device, "glove.device")  # fail before reading inputs
    tokens, i, j, x = read_inputs()
    check_inputs(tokens, i, j, config.size)
    model = Glove(size=config.size, x_max=config.x_max, alpha=config.alpha, learning_rate=config.learning_rate,
                  epochs=config.epochs, batch_size=config.batch_size, device=str(device), seed=params.seed,
                  threads=resolve_threads("auto"))  # any count gives the same numbers (its two threads split rows)
    with live("glove") as logger, Timer() as timer:
        progress = EpochProgress(METHOD, config.epochs, logger)
        model.callbacks = [lambda epoch, loss, fitted: progress({"epoch": epoch, "loss": loss,
                                                                 "seconds": fitted.seconds_[-1]})]
        model.fit(i, j, x, vocab_size=len(tokens))
        progress.close()
    if not dd.is_main():  # every process holds the same state; one writes it
        return
    write_vectors(METHOD, tokens, model.vectors_)
    write_train_info(METHOD, timer.seconds, model.loss_, device=model.device_, epochs=len(model.loss_),
                     batch_size=config.batch_size, nonzeros=int(len(x)), processes=dd.world_size())
    write_loss_csv(model.loss_)
    print(f"glove: {len(tokens)} words x {config.size} from {len(x)} non-zeros, {len(model.loss_)} epochs "
          f"on {model.device_} x {dd.world_size()} in {timer.seconds:.1f} s, final loss {model.loss_[-1]:.6f}")


@cli_main
def main() -> None:
    params = load_params(glove=GloveParams)
    with dd.setup():  # a no-op unless launched by torchrun with several processes
        run(params)
        dd.barrier()


if __name__ == "__main__":
    main()
