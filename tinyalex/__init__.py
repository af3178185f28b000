"""tinyalex: the AlexNet paper (Krizhevsky, Sutskever, Hinton 2012) from scratch on NumPy/CuPy."""

__version__ = "0.1.0"
