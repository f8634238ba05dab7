"""graphlab: expressive graph neural networks on PyTorch Geometric."""

__version__ = "0.1.0"
