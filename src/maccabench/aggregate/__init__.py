"""Aggregation: run folders -> the paper's tables, figures and the report's captions.

- `spec`: the `tables:` config section resolved for a tier (which runs each table reads).
- `runs`: reading run folders per the training-stage contract (final.json, metrics.csv, ...).
- `stats`: IQM, stratified bootstrap confidence intervals, probability of improvement.
- `tables`: building a table from runs and writing it as CSV, Markdown, LaTeX and HTML,
  plus the side-by-side version with the paper's published values.
- `figures`: learning curves, Figure-4 mask heat-maps, reward-recovery scatter (seaborn).

Command line: `python -m maccabench.aggregate --help`.
"""
