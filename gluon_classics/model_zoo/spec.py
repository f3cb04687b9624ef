"""The variant tables' lookup, shared by the model factories."""

__all__ = ['variant_spec']


def variant_spec(table, variant, model, **overrides):
    """``table[variant]`` updated with the ``overrides`` that are not None.

    An unknown variant is one ``ValueError`` naming ``model``'s variants.
    """
    if variant not in table:
        raise ValueError(f'unknown {model} variant {variant!r}: choose one of '
                         f'{", ".join(sorted(table))}')
    return dict(table[variant], **{k: v for k, v in overrides.items() if v is not None})
