"""Layer 3b, conversation stores: where a ``ConversationState`` is kept between runs
(in memory, in a JSON file written atomically).

Rule: imports trio, msgspec, the standard library and the layers below
(``_base``, ``_protocol``, ``_agent``). No HTTP, no actors: a store only keeps
documents; the session decides when to load and save them.
"""
