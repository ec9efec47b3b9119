"""The experiment library: the game days shipped with Brownout (``brownout demo --list``).

This folder is installed as the ``brownout_library`` package (pyproject.toml maps it), so the
YAML files and ``data/`` travel inside the wheel as package data; ``brownout.library`` finds
them with importlib.resources. There is no code here.
"""
