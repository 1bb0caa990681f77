"""Recurrent sequence-modelling toolkit for Keras 3.

`import toolkit` registers every toolkit layer with Keras serialization, so
`keras.saving.load_model` can read models that use them.
"""

from toolkit.cells import LSTMCell, VanillaRNNCell
from toolkit.initializers import UnitForgetBias
from toolkit.layers import LSTM, DeepRNN, VanillaRNN
from toolkit.models import MaskedGlobalPooling1D

__all__ = [
    "DeepRNN",
    "LSTM",
    "LSTMCell",
    "MaskedGlobalPooling1D",
    "UnitForgetBias",
    "VanillaRNN",
    "VanillaRNNCell",
]

__version__ = "0.1.0"
