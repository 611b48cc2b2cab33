"""The vision encoder of Diffusion Policy: ResNet-18 with GroupNorm, spatial softmax, a linear map.

Each camera's image (3 × 84 × 84 after the crop, :mod:`dplearn.nets.crop`) becomes a short
feature vector that joins the agent's position in the policy's condition (Chi et al., 2023, after
robomimic's ``VisualCore``):

1. :class:`ResNet18GN` — ResNet-18 (He et al., 2016) without its pooling and classifier, trained from
   scratch, with every BatchNorm replaced by GroupNorm of C/16 groups. BatchNorm normalises with
   statistics of the current batch in training and with running averages when acting; with small
   batches and an exponential moving average of the *weights* (the EMA policy is what acts), the
   averaged weights meet running statistics that belong to no single set of weights, and the policy
   degrades. GroupNorm normalises each image by itself, the same in training and at inference.
2. :class:`SpatialSoftmax` — a 1 × 1 convolution to K = 32 maps, a softmax over each map's pixels,
   and the expected (x, y) under it: K keypoints in [−1, 1]², "where" features that a policy for
   pushing needs more than "what" features (Levine et al., 2016).
3. a linear map of the 2K keypoint coordinates to the feature width (64).

Written here rather than taken from torchvision: torchvision's PyPI wheels match one torch build
(the CUDA one) and fail to import beside the CPU build the tests use, and the CPU tiers need a
narrower ResNet-18 (``width`` < 64), which torchvision's ``BasicBlock`` refuses. With ``width=64``
the network is torchvision's ``resnet18`` layer for layer (same names up to ``bn`` → ``norm``, same
parameter count: 11,176,512 without the classifier).

Introduced in chapter 9.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dplearn import validate
from dplearn.nets.crop import RandomCrop

__all__ = ["group_norm", "BasicBlock", "ResNet18GN", "SpatialSoftmax", "ImageEncoder"]


def group_norm(channels: int, per_group: int = 16) -> nn.GroupNorm:
    """GroupNorm with ``channels // per_group`` groups (at least one): Diffusion Policy's
    replacement of ``BatchNorm2d(channels)``, with the same affine parameters (weight 1, bias 0)."""
    return nn.GroupNorm(max(1, channels // per_group), channels)


class BasicBlock(nn.Module):
    """ResNet's basic block: conv3×3 (stride s) → GN → ReLU → conv3×3 → GN, plus the input (through a
    1×1 conv and GN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.norm1 = group_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = group_norm(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                            group_norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18GN(nn.Module):
    """ResNet-18's convolutional trunk with GroupNorm: (N, 3, H, W) → (N, 8·width, ⌈H/32⌉, ⌈W/32⌉).

    Stem: conv7×7 stride 2 → GN → ReLU → max-pool 3×3 stride 2; then four stages of two
    :class:`BasicBlock` s with ``width``, 2·width, 4·width, 8·width channels, the last three starting
    with stride 2. ``width=64`` is ResNet-18 (512 channels out; 3 × 3 maps for 84 × 84 inputs);
    smaller widths keep the depth and shrink every layer (the CPU tiers). Initialised as torchvision
    does (Kaiming-normal convolutions, fan-out; GN weight 1, bias 0); no pretrained weights.

    Introduced in chapter 9.
    """

    def __init__(self, width: int = 64, in_channels: int = 3):
        super().__init__()
        width = validate.positive_int("width", width)
        self.width, self.out_channels = width, 8 * width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.norm1 = group_norm(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c = [], width
        for i, out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(c, out, stride), BasicBlock(out, out)))
            c = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.norm1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class SpatialSoftmax(nn.Module):
    """Keypoints from feature maps: (N, C, H, W) → (N, K, 2), each an expected (x, y) in [−1, 1]².

    .. math::

        a_k = W_k * f + b_k, \\qquad p_k(i, j) = \\frac{e^{a_k(i, j)/\\tau}}{\\sum_{i', j'} e^{a_k(i', j')/\\tau}},
        \\qquad (x_k, y_k) = \\sum_{i, j} p_k(i, j)\\,(u_j, v_i),

    with a 1 × 1 convolution ``W`` to K maps, temperature τ (1), and pixel coordinates
    ``u_j = −1 + 2j/(W−1)``, ``v_i = −1 + 2i/(H−1)`` (left/top edge −1, right/bottom +1), as robomimic's
    ``SpatialSoftmax``. Works at any H, W.

    Introduced in chapter 9.
    """

    def __init__(self, in_channels: int, num_keypoints: int = 32, temperature: float = 1.0):
        super().__init__()
        in_channels = validate.positive_int("in_channels", in_channels)
        num_keypoints = validate.positive_int("num_keypoints", num_keypoints)
        self.num_keypoints, self.temperature = num_keypoints, validate.positive_float("temperature", temperature)
        self.keypoint_maps = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4:
            raise ValueError(f"features must have shape (N, C, H, W), got {tuple(features.shape)}")
        maps = self.keypoint_maps(features)
        n, k, h, w = maps.shape
        with torch.autocast(maps.device.type, enabled=False):  # softmax and expectation in float32
            attention = torch.softmax(maps.reshape(n, k, h * w).float() / self.temperature, dim=-1)
            ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, h, device=maps.device),
                                    torch.linspace(-1.0, 1.0, w, device=maps.device), indexing="ij")
            grid = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # (H·W, 2): (x, y) of each pixel
            return attention @ grid

    def extra_repr(self) -> str:
        return f"num_keypoints={self.num_keypoints}, temperature={self.temperature}"


class ImageEncoder(nn.Module):
    """One camera's encoder: crop → ResNet-18 (GN) → spatial softmax → linear.

    ``images`` (N, 3, H, W), uint8 in [0, 255] or float in [0, 1] → features (N, ``feature_dim``).
    In training mode the crop is random (one offset per image), in eval mode central
    (:class:`~dplearn.nets.crop.RandomCrop`); ``crop_size=None`` skips it. On a GPU the images go
    channels-last (the layout cuDNN's convolutions are fastest in), on the CPU contiguous.

    Introduced in chapter 9.
    """

    def __init__(self, width: int = 64, num_keypoints: int = 32, feature_dim: int = 64,
                 crop_size: int | None = 84):
        super().__init__()
        self.crop = None if crop_size is None else RandomCrop(crop_size)
        self.backbone = ResNet18GN(width)
        self.pool = SpatialSoftmax(self.backbone.out_channels, num_keypoints)
        self.proj = nn.Linear(2 * num_keypoints, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        x = images if self.crop is None else self.crop(images)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = x.contiguous(memory_format=torch.channels_last if x.is_cuda else torch.contiguous_format)
        keypoints = self.pool(self.backbone(x))
        return self.proj(keypoints.flatten(1).to(self.proj.weight.dtype))
