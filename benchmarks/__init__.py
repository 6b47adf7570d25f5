"""Benchmarks of a real Gatehouse server: `make bench` (`python -m benchmarks.run`)."""
