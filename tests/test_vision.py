"""The vision encoder and its augmentation (chapter 9), each against an independent computation:
spatial softmax in float64 from scratch, ResNet-18's published parameter count, a residual block by hand,
and crops found by searching every window of the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dplearn.nets import (
    ImageEncoder,
    RandomCrop,
    ResNet18GN,
    SpatialSoftmax,
    center_crop,
    crop,
    random_crop,
)
from dplearn.nets.vision import BasicBlock

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


# torchvision's resnet18 has 11,689,512 parameters, of which the 1000-way classifier takes 512·1000 + 1000
RESNET18_WITHOUT_FC = 11_689_512 - 513_000


# ---------------------------------------------------------------------------------------------
# spatial softmax
# ---------------------------------------------------------------------------------------------
def spatial_softmax_by_hand(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """float64, with loops: 1×1 conv, softmax over the H·W pixels of each map, expected (x, y)."""
    n, c, h, w = features.shape
    k = weight.shape[0]
    out = np.zeros((n, k, 2))
    xs = np.array([-1 + 2 * j / (w - 1) for j in range(w)])  # left edge -1, right edge +1
    ys = np.array([-1 + 2 * i / (h - 1) for i in range(h)])
    for b in range(n):
        for kk in range(k):
            logits = np.einsum("c,chw->hw", weight[kk], features[b]) + bias[kk]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            out[b, kk, 0] = (p * xs[None, :]).sum()
            out[b, kk, 1] = (p * ys[:, None]).sum()
    return out


@pytest.mark.parametrize("h,w", [(3, 3), (5, 7)])
def test_spatial_softmax_matches_expected_coordinates_in_float64(h, w):
    torch.manual_seed(0)
    ss = SpatialSoftmax(6, num_keypoints=4)
    feats = torch.randn(3, 6, h, w) * 3
    expected = spatial_softmax_by_hand(feats.double().numpy(), ss.keypoint_maps.weight.detach().double()
                                       .numpy()[:, :, 0, 0], ss.keypoint_maps.bias.detach().double().numpy())
    got = ss(feats)
    assert got.shape == (3, 4, 2)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=0, atol=1e-5)


def test_spatial_softmax_finds_a_single_bright_pixel():
    ss = SpatialSoftmax(1, num_keypoints=1)
    with torch.no_grad():
        ss.keypoint_maps.weight.fill_(1.0)
        ss.keypoint_maps.bias.zero_()
    feats = torch.zeros(1, 1, 5, 9)
    feats[0, 0, 4, 2] = 100.0  # row 4 (bottom), column 2 of 9
    np.testing.assert_allclose(ss(feats)[0, 0].detach().numpy(), [-1 + 2 * 2 / 8, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="num_keypoints"):
        SpatialSoftmax(4, num_keypoints=0)


# ---------------------------------------------------------------------------------------------
# ResNet-18 with GroupNorm
# ---------------------------------------------------------------------------------------------
def test_resnet18gn_has_resnet18s_parameters_and_groupnorm_everywhere():
    net = ResNet18GN()
    assert sum(p.numel() for p in net.parameters()) == RESNET18_WITHOUT_FC
    kinds = {type(m) for m in net.modules()}
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and len(norms) == 20  # 1 stem + 16 in the blocks + 3 shortcuts, each normed
    assert all(g.num_groups == g.num_channels // 16 for g in norms)
    out = net(torch.randn(2, 3, 84, 84))
    assert out.shape == (2, 512, 3, 3)  # 84 / 32 rounded up
    narrow = ResNet18GN(width=16)
    assert narrow(torch.randn(1, 3, 96, 96)).shape == (1, 128, 3, 3)
    # same depth, every layer narrower: parameters scale as width squared (the stem's input channels aside)
    n16 = sum(p.numel() for p in narrow.parameters())
    assert abs(n16 / RESNET18_WITHOUT_FC - (16 / 64) ** 2) < 0.01


def _gn_by_hand(x, gn):
    n, c, h, w = x.shape
    g = x.reshape(n, gn.num_groups, -1)
    g = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + gn.eps)
    return g.reshape(n, c, h, w) * gn.weight.detach().double().numpy()[None, :, None, None] \
        + gn.bias.detach().double().numpy()[None, :, None, None]


def test_basic_block_with_a_shortcut_matches_a_hand_computation():
    torch.manual_seed(1)
    blk = BasicBlock(16, 32, stride=2)
    with torch.no_grad():
        for m in blk.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
    x = torch.randn(2, 16, 9, 9)

    def conv(inp, m):
        return F.conv2d(torch.as_tensor(inp), m.weight.detach().double(), None, m.stride, m.padding).numpy()

    xd = x.double().numpy()
    h = np.maximum(_gn_by_hand(conv(xd, blk.conv1), blk.norm1), 0)
    h = _gn_by_hand(conv(h, blk.conv2), blk.norm2)
    short = _gn_by_hand(conv(xd, blk.downsample[0]), blk.downsample[1])
    expected = np.maximum(h + short, 0)
    np.testing.assert_allclose(blk(x).detach().double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_image_encoder_reads_uint8_and_floats_alike_and_crops_by_mode():
    torch.manual_seed(2)
    enc = ImageEncoder(width=8, num_keypoints=5, feature_dim=7).eval()
    images = torch.randint(0, 256, (4, 3, 96, 96), dtype=torch.uint8)
    out = enc(images)
    assert out.shape == (4, 7)
    torch.testing.assert_close(out, enc(images.float() / 255))
    # eval mode: the centre crop, so the same as encoding the centre 84 × 84 without a crop
    no_crop = ImageEncoder(width=8, num_keypoints=5, feature_dim=7, crop_size=None).eval()
    no_crop.load_state_dict(enc.state_dict())
    torch.testing.assert_close(out, no_crop(images[:, :, 6:90, 6:90]))
    enc.train()  # training mode: random crops, so the features move
    assert not torch.allclose(enc(images), out)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        enc(torch.zeros(4, 96, 96, 3))


# ---------------------------------------------------------------------------------------------
# crops
# ---------------------------------------------------------------------------------------------
def _find_offset(image: torch.Tensor, window: torch.Tensor) -> list[tuple[int, int]]:
    """Every (top, left) at which ``window`` appears in ``image`` (C, H, W), by exhaustive search."""
    size = window.shape[-1]
    h, w = image.shape[-2:]
    return [(t, l) for t in range(h - size + 1) for l in range(w - size + 1)
            if torch.equal(image[:, t:t + size, l:l + size], window)]


def test_random_crop_cuts_a_window_of_each_image_at_its_own_uniform_offset():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 20, 20), dtype=torch.uint8, generator=g)
    out = random_crop(images, 14, generator=torch.Generator().manual_seed(1))
    assert out.shape == (64, 3, 14, 14) and out.dtype == torch.uint8
    offsets = []
    for image, window in zip(images, out, strict=True):
        found = _find_offset(image, window)
        assert len(found) == 1  # random content: the window is in exactly one place
        offsets.append(found[0])
    tops, lefts = np.array(offsets).T
    assert tops.min() >= 0 and tops.max() <= 6 and lefts.max() <= 6
    assert len(set(offsets)) > 30  # each image its own offset, not one for the batch
    # many draws: every one of the 7 × 7 offsets comes up, about equally often
    many = torch.zeros(4000, 1, 8, 8)
    many[:, 0] = torch.arange(64.0).reshape(8, 8)
    corner = random_crop(many, 2, generator=torch.Generator().manual_seed(2))[:, 0, 0, 0].long()
    counts = np.bincount((corner // 8 * 7 + corner % 8).numpy(), minlength=49)
    assert counts.min() > 40 and counts.max() < 130  # expected 81.6 each


def test_center_crop_and_the_crop_module_modes():
    images = torch.arange(2 * 3 * 96 * 96, dtype=torch.float32).reshape(2, 3, 96, 96)
    centre = center_crop(images, 84)
    assert torch.equal(centre, images[:, :, 6:90, 6:90])
    module = RandomCrop(84)
    assert torch.equal(module.eval()(images), centre)
    torch.manual_seed(0)
    trained = module.train()(images)
    assert trained.shape == (2, 3, 84, 84)
    top, left = torch.tensor([0, 12]), torch.tensor([12, 3])
    cut = crop(images, top, left, 84)
    assert torch.equal(cut[0], images[0, :, 0:84, 12:96]) and torch.equal(cut[1], images[1, :, 12:96, 3:87])
    with pytest.raises(ValueError, match="size must be"):
        random_crop(images, 97)
    with pytest.raises(ValueError, match="top and left"):
        crop(images, top[:1], left, 84)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_crops_run_on_the_gpu():
    images = torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8, device="cuda")
    out = random_crop(images, 84)
    assert out.device.type == "cuda"
    for image, window in zip(images.cpu(), out.cpu(), strict=True):
        assert len(_find_offset(image, window)) >= 1
    enc = ImageEncoder(width=8).cuda()
    assert enc(images).shape == (8, 64)
