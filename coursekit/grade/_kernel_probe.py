"""Kernel side of probes. The grader sends this file's text to every kernel it starts.

It defines ``probe(name, value, *, rtol=1e-5, atol=1e-8)`` (and keeps a copy as
``builtins.__grade_probe__``, which the grader rebinds to ``probe`` before each hidden test).
``probe`` encodes ``value`` as JSON (arrays as base64 ``.npy`` bytes, never pickle) and publishes it
as display data of type :data:`MIME`; the grader decodes and compares it in its own process. The
tolerances a *submission* sends are ignored: the grader uses those of the reference run.

This file must run in a bare kernel: standard library only (NumPy, torch and TensorFlow values are
recognised when those modules are already imported). It does not import ``utils``.
"""


def _array_encoder():
    """``as_array(value)``: a NumPy, torch or TensorFlow array as ``{"__ndarray__": base64 .npy}``,
    or ``None`` for anything else (or when NumPy is not loaded)."""
    import base64
    import io
    import sys

    def as_array(value):
        np = sys.modules.get("numpy")
        if np is None:
            return None
        if isinstance(value, np.ndarray):
            array = value
        elif callable(getattr(value, "detach", None)):  # torch.Tensor
            array = value.detach().cpu().numpy()
        elif callable(getattr(value, "numpy", None)):  # tf.Tensor, tf.Variable
            array = np.asarray(value.numpy())
        elif hasattr(value, "__array__"):
            array = np.asarray(value)
        else:
            return None
        if array.dtype.hasobject:
            raise TypeError("arrays of Python objects cannot be probed")
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return {"__ndarray__": base64.b64encode(buffer.getvalue()).decode("ascii")}

    return as_array


def _value_encoder(as_array):
    """``encode(value)``: a probed value as JSON-safe data (the grader's ``values.decode``)."""
    import math
    import sys

    def encode(value, depth=0):
        if depth > 32:
            raise ValueError("value is nested too deeply")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if -2**53 < value < 2**53 else {"__int__": str(value)}
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(float(value))}
        if isinstance(value, complex):
            return {"__complex__": [encode(value.real), encode(value.imag)]}
        if isinstance(value, (list, tuple)):
            return [encode(item, depth + 1) for item in value]
        if isinstance(value, dict):
            return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)]
                                 for k, v in value.items()]}
        if isinstance(value, (set, frozenset)):
            return {"__set__": sorted((encode(item, depth + 1) for item in value), key=repr)}
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, np.generic):
            return encode(value.item(), depth)
        array = as_array(value)
        if array is not None:
            return array
        raise TypeError(f"cannot probe a value of type {type(value).__name__} "
                        "(use numbers, strings, lists, tuples, dicts, sets or arrays)")

    return encode


def _install(encode):
    import builtins

    mime = "application/vnd.cnn-course.probe+json"

    def probe(name, value, *, rtol=1e-5, atol=1e-8):
        """Send ``value`` to the grader under ``name``; returns ``value`` unchanged."""
        from IPython.display import publish_display_data

        payload = {"name": str(name), "rtol": float(rtol), "atol": float(atol)}
        try:
            payload["value"] = encode(value)
        except Exception as exc:
            payload["error"] = f"{type(exc).__name__}: {exc}"[:300]
        publish_display_data({mime: payload})
        return value

    probe.encode = encode  # for the grader's unit tests
    builtins.__grade_probe__ = probe
    return probe


# Only ``probe`` stays in the kernel's namespace: the helpers live on in its closures.
probe = _install(_value_encoder(_array_encoder()))
del _install, _value_encoder, _array_encoder
