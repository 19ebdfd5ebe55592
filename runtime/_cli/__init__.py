"""Layer 6, the command line (``openrouter-trio``): run, emulator, demo, serve.

Rule: the top: may import everything, the emulator and the feed included. Nothing imports it
but ``runtime.__main__``.
"""
