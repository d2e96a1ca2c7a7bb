"""adaptive_de: adaptive data engineering for face parsing with a Face Transformer."""

__version__ = "0.1.0"
