"""Layer 0, the foundation: the error tree, exception-group unwrapping, facade publishing.

Rule: imports only the standard library (and msgspec, to leave Structs alone when publishing).
Every other layer may import it.
"""
