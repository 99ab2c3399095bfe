"""palate's version, in a module of its own so any layer can read it without importing the
whole package."""

__version__ = "0.1.0"

__all__ = ["__version__"]
