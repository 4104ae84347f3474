"""The generative techniques, one folder each (model, data, sampling, training, evaluation).

``arcnn``  the AR-CNN: a U-Net trained on Bach chorales that enhances a melody.
"""

__all__: list[str] = []
