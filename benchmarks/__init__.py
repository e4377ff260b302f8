"""Side-by-side training benchmarks: funnet, plain NumPy, PyTorch, scikit-learn.

Run ``python -m benchmarks.run --help``; see ``benchmarks/README.md``.
"""
