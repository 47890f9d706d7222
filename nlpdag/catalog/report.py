"""What `report` writes."""
from pathlib import Path

INDEX = Path("reports/index.html")
FIGURES = Path("reports/figures")
