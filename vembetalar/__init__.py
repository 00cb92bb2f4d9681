"""vembetalar — vem betalar? Agreements on cost responsibility as executable, cited rules."""

__version__ = "0.1.0"
