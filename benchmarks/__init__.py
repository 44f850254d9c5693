"""Benchmarks: this project's engine and pipeline against the pydicom floor and the peers."""
