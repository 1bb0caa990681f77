"""Recurrent sequence-modelling toolkit for Keras 3.

`import toolkit` registers every toolkit layer and optimizer with Keras
serialization, so `keras.saving.load_model` can read models that use them.
"""

from toolkit.cells import LSTMCell, VanillaRNNCell
from toolkit.deep import DeepRNN
from toolkit.initializers import UnitForgetBias
from toolkit.layers import LSTM, VanillaRNN
from toolkit.lstm_variants import (
    LayerNormLSTM,
    LayerNormLSTMCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
    ProjectionLSTM,
    ProjectionLSTMCell,
)
from toolkit.optimizers import make_optimizer
from toolkit.pooling import MaskedGlobalPooling1D

__all__ = [
    "DeepRNN",
    "LSTM",
    "LSTMCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "MaskedGlobalPooling1D",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "ProjectionLSTM",
    "ProjectionLSTMCell",
    "UnitForgetBias",
    "VanillaRNN",
    "VanillaRNNCell",
    "make_optimizer",
]

__version__ = "0.1.0"
