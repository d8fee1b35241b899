"""nndl: the classic two-layer network assignment, made real software."""

from nndl.config import TrainOptions
from nndl.network import Network
from nndl.neural_net import TwoLayerNet
from nndl.training import TrainingDivergedError, train_network

__version__ = "0.1.0"
__all__ = ["Network", "TwoLayerNet", "TrainOptions", "TrainingDivergedError", "train_network",
           "__version__"]
