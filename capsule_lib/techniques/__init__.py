"""The generative techniques, one folder each (parameters, model, sampling, training, evaluation).

``arcnn``        the AR-CNN: a U-Net trained on Bach chorales that enhances a melody
``gan``          the GAN: MuseGAN and U-Net generators that accompany a melody
``transformer``  the Transformer-XL over performance tokens that extends a melody

``spec``         reads the registry (:data:`~capsule_lib.technique_registry.TECHNIQUES`); the
                 :class:`~capsule_lib.techniques.spec.Technique` record and the parameter definitions
``_common``      what every technique does the same way: the start of a run, the model
                 resolver, the training job

A new technique is a folder ``techniques/<name>/`` with ``params.py`` (its ``SPEC``) and
``technique.py`` (its ``TECHNIQUE`` record), plus its name in ``technique_registry.TECHNIQUES``: the
command line, the panels and the studio find it there.
"""

__all__: list[str] = []
