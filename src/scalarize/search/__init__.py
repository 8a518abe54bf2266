"""The decisions of a weight search: strategies, the population policy, explore, the simplex,
the search config, Optuna sampling and the summary; no engine, no training loop."""
