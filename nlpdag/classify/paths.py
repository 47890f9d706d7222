"""Output paths of the `classify` stage that are not in nlpdag/catalog.py yet: every stage depends on the
catalog, so adding a name there reruns the whole pipeline. They move into it with the next change that
reruns every stage anyway."""
from pathlib import Path

TREES = Path("reports/classify/trees.json")  # the report's tree panel: short test sentences, every node's prediction
