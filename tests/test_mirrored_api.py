"""utils.pytorch and utils.tensorflow mirror each other: the same concept has the same name and
signature in both, so a lesson's two tabs differ only where the frameworks really differ."""

import inspect

import utils.pytorch as pt
import utils.tensorflow as tf_

# Where the frameworks differ on purpose: the capture mechanism each framework teaches, and
# Keras' clear_cache: the Keras helpers build and compile a sub-model per model and layer list and
# keep it (memory a user may want back), while PyTorch's hooks are attached per call and keep
# nothing, so a PyTorch clear_cache would be a no-op that suggests otherwise.
MECHANISMS = {"pytorch": {"ActivationCapture"}, "tensorflow": {"activation_model", "clear_cache"}}


def test_same_public_names():
    assert set(pt.__all__) - MECHANISMS["pytorch"] == set(tf_.__all__) - MECHANISMS["tensorflow"]
    for module in (pt, tf_):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ names missing attributes: {missing}"


def test_same_signatures():
    shared = (set(pt.__all__) & set(tf_.__all__)) - {"FRAMEWORK", "LAYOUT", "MODEL_NAMES"}
    differing = {}
    for name in sorted(shared):
        a, b = getattr(pt, name), getattr(tf_, name)
        if inspect.isclass(a) and issubclass(a, BaseException):
            continue
        if not callable(a):
            continue
        if inspect.isclass(a):
            continue  # classes are framework objects (a hook helper, a Keras callback)
        sa = [(p.name, p.kind, p.default) for p in inspect.signature(a).parameters.values()]
        sb = [(p.name, p.kind, p.default) for p in inspect.signature(b).parameters.values()]
        if sa != sb:
            differing[name] = (str(inspect.signature(a)), str(inspect.signature(b)))
    assert not differing, differing


def test_layouts_are_declared():
    assert (pt.FRAMEWORK, pt.LAYOUT) == ("pytorch", "channels_first")
    assert (tf_.FRAMEWORK, tf_.LAYOUT) == ("tensorflow", "channels_last")
    assert pt.MODEL_NAMES == tf_.MODEL_NAMES
