"""nlpdag pipeline stages: one module per DVC stage, each with pure functions and a thin `main`."""
