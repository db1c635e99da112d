"""Benchmarks B1–B6 against the emulator (see benchmarks/README.md)."""
