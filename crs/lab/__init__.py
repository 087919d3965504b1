"""The policy lab: configuration files, question banks, comparisons and sweeps of question policies."""
