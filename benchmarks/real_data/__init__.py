"""Small data generators and stubs for benchmarks/real_scripts.py (no real script's code lives here)."""
