"""DVC stage `pretrained`: wiring only; the logic is nlpdag.embeddings.pretrained."""
from __future__ import annotations

import numpy as np

from nlpdag.config.base import load_params
from nlpdag.config.pretrained import PretrainedParams
from nlpdag.embeddings.pretrained import METHOD, load_vectors
from nlpdag.errors import cli_main
from nlpdag.io.vectors import Timer, write_vectors


@cli_main
def main() -> None:
    params = load_params(pretrained=PretrainedParams).pretrained
    with Timer() as timer:
        if params.path is None:
            write_vectors(METHOD, [], np.zeros((0, 1), dtype=np.float32))
            print("pretrained: no pretrained.path set; wrote an empty table")
            return
        kv = load_vectors(params.path, params.format)
    write_vectors(METHOD, list(kv.index_to_key), kv.vectors)
    print(f"pretrained: {len(kv)} vectors of size {kv.vector_size} from {params.path}")


if __name__ == "__main__":
    main()
