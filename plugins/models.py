"""Built-in models: the TIS paper's MNIST CNN, ResNet-18 for small images, and an MLP for
tabular data. Every model is built for the data set's input shape and class count."""

from __future__ import annotations

import math

from torch import nn

import fubench
from fubench import ModelFactory, Param


class MnistCNN(ModelFactory):
    """conv5x5(32) → ReLU → maxpool2 → conv5x5(64) → ReLU → maxpool2 → fc(512) → ReLU →
    fc(classes), the CNN of the TIS paper's code. No padding, so 28x28 input flattens to
    64·4·4 = 1024 features."""

    name = "mnist_cnn"
    parameters = {"hidden": Param(512, int, min=1)}

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        channels, height, width = input_shape
        flat_h, flat_w = (height - 4) // 2, (width - 4) // 2
        flat_h, flat_w = (flat_h - 4) // 2, (flat_w - 4) // 2
        return nn.Sequential(
            nn.Conv2d(channels, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * flat_h * flat_w, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, n_classes),
        )


class ResNet18(ModelFactory):
    """torchvision's ResNet-18 adapted to 28/32-pixel input (3x3 stem, stride 1, no
    max-pool), for 1- or 3-channel images."""

    name = "resnet18"
    parameters = {}

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        import torchvision

        model = torchvision.models.resnet18(num_classes=n_classes)
        model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        return model


class MLP(ModelFactory):
    """Fully connected network for tabular rows (or flattened images)."""

    name = "mlp"
    parameters = {"hidden": Param([128, 64], list, help="hidden layer widths")}

    @classmethod
    def validate_config(cls, params, context):
        for i, size in enumerate(params["hidden"]):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                yield f"hidden[{i}]", f"expected a whole number >= 1, got {size!r}"

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)


@fubench.hookimpl
def fubench_models() -> list[type[ModelFactory]]:
    return [MnistCNN, ResNet18, MLP]
