"""botkit: build, serve, scale, monitor and govern an intent chat bot, with BentoML.

The library is organised in floors (see README): core modules (``data``, ``model``,
``evaluate``, ``registry``, ``drift``, ``redact``, ``config``) know nothing of HTTP or
notebooks; ``service`` and ``events`` serve; workflows combine them; ``cli`` is the face.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
