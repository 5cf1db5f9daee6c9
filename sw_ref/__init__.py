"""overq's software reference: the numerics (``quant``, ``ocs``, ``apot``, ``overq``,
``channel_order``, ``weights``) and the bring-your-own-model API on top of them:

    import sw_ref
    qmodel = sw_ref.quantize(model, calib_batches, sw_ref.Scheme(act_bits=4, channel_order=True))
    print(qmodel.report(test_batches))

``quantize``, ``Scheme`` and ``QuantizedModel`` are imported on first use, so that
``import sw_ref.<module>`` stays as light as the module itself.
"""

__all__ = ["QuantizedModel", "Scheme", "quantize"]

_LAZY = {
    "quantize": "sw_ref.quantized",
    "QuantizedModel": "sw_ref.quantized",
    "Scheme": "sw_ref.scheme",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sw_ref' has no attribute {name!r}")
