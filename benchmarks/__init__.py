"""On-demand benchmarks (`make bench`): figures are ratios against a baseline measured in the
same run on the same machine, never absolute times (see /work/shared/quality.md)."""
