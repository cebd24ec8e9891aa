"""Command-line tools: each module defines one Tool subclass and ``main``."""
