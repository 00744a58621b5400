"""caramba.engine.bench: benchmarks after a target's runs (perplexity, latency, memory,
behavior, context); :func:`~caramba.engine.bench.run.run_benchmarks` runs them."""
