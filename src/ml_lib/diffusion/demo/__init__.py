"""The embedded demo model at run time: where it lives (``assets``) and the words of its world (``words``).

Its training kit (the procedural world, the networks, training stages, export and measurement) is not part
of the package: it lives in ``scripts/demo_kit`` and is driven by ``scripts/train_demo.py``.
"""

__all__: list[str] = []
