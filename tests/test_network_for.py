"""network_for: the run configuration's network, the first assignment's class kept."""

from nndl.config import RunConfig
from nndl.network import Network, network_for
from nndl.neural_net import TwoLayerNet


def test_network_for_keeps_the_first_assignment_class_and_goes_deeper():
    assert type(network_for(RunConfig(), 20, 3)) is TwoLayerNet
    deep = network_for(RunConfig(hidden_sizes="8,6", batchnorm=True), 20, 3)
    assert type(deep) is Network and deep.sizes == (20, 8, 6, 3)
    assert "gamma2" in deep.params
    assert type(network_for(RunConfig(std="auto"), 20, 3)) is Network  # He needs Network
