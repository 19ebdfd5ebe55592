"""Layer 5, the composition root: ``OpenRouter``, ``ModelResult``, the session pool.

Rule: may import every ``runtime`` layer below it, and ``actors`` only through the one
documented deferred import in ``client.py`` (``actors`` imports ``runtime._*`` modules, so a
top-level import would make ``import actors._session`` first a cycle).
"""
