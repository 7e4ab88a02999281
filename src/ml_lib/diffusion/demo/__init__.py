"""The embedded demo model: a procedural world of coloured shapes, its training, and its measurement.

Submodules (imported explicitly, nothing is imported here): ``world`` (scenes, images, captions, masks;
numpy + Pillow), ``analysis`` (pixel analysis of generated images; numpy + Pillow), ``assets`` (where the
shipped model lives; no torch), ``tokenizer`` (the demo CLIP tokenizer), ``model`` (architectures),
``train_*`` (training stages, driven by ``scripts/train_demo.py``) and ``export`` (asset folder, A1111
single file).
"""

__all__: list[str] = []
