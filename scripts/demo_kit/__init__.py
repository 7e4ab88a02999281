"""The demo model's training kit (not shipped in the package): world, networks, training, export, measurement.

Submodules (imported explicitly): ``world`` (scenes, images, captions, masks; numpy + Pillow), ``analysis``
(pixel analysis of generated images), ``tokenizer`` (the demo CLIP tokenizer), ``model`` (architectures),
``train_*`` (training stages, driven by ``scripts/train_demo.py``), ``seed`` (state from the shipped model)
and ``export`` (asset folder, A1111 single file). Tests and benchmarks import it with ``scripts/`` on
``sys.path`` (pytest's ``pythonpath`` setting).
"""

__all__: list[str] = []
