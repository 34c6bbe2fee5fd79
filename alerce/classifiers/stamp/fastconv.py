"""Inference-only forward pass of the stamp network with DFT ("fast") convolutions.

The 5x5 "SAME" convolutions of :class:`~alerce.classifiers.stamp.network.DeepHitsWithFeatures`
cost ~97% of the network's 0.42 GFLOP per alert, which kept direct convolution near 200
alerts/s on one AVX2 core. :class:`DFTConv2d` computes such a convolution exactly (up to float32
rounding) through the convolution theorem, with every transform written as a dense real matrix
product:

* activations are kept in ``(H, W, B, C)`` layout (spatial outer, batch x channels inner), so each
  1-D discrete Fourier transform along ``W`` or ``H`` is one large matrix product and no
  transposition is ever needed between the forward transform, the per-frequency channel mixing
  (a batched ``(B, C) @ (C, O)`` complex product, done with four real ``bmm``), and the inverse;
* a circular transform of length ``N = H + k // 2`` reproduces zero "SAME" padding exactly (the
  wrap-around of both borders lands in the ``k // 2`` zero rows), only ``N // 2 + 1`` columns
  are kept along ``W`` (real input, Hermitian symmetry).

:class:`FastStampForward` uses it for the three 12x12 convolutions (about 5x fewer multiply-adds
there; 70% of the network's total); on the 24x24, 32-channel layer the transforms would cost as
much as they save, so it stays a direct convolution. Results equal the module's ``forward``
within float32 rounding (~1e-7 on the probabilities, checked in ``tests/test_stamp_fast.py``).
Training always uses the module itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from alerce.classifiers.stamp.constants import CROP_SIZE
from alerce.classifiers.stamp.network import DeepHitsWithFeatures


class DFTConv2d:
    """A frozen ``Conv2d`` (odd kernel, stride 1, zero "SAME" padding) on ``(H, W, B, C)`` input.

    Parameters
    ----------
    conv : nn.Conv2d
        Weights ``(O, C, k, k)`` and bias are copied (the object does not follow later updates).
    size : int
        Side ``H == W`` of the square input.
    """

    def __init__(self, conv: nn.Conv2d, size: int) -> None:
        w = conv.weight.detach().to("cpu", torch.float64)
        out_ch, in_ch, k, k2 = w.shape
        if k != k2 or k % 2 == 0 or tuple(conv.padding) != (k // 2, k // 2) or \
                tuple(conv.stride) != (1, 1) or tuple(conv.dilation) != (1, 1) or conv.groups != 1:
            raise ValueError("DFTConv2d needs a stride-1, odd-kernel, SAME-padded 2-D convolution")
        p, h = k // 2, size
        n = h + p                      # circular length reproducing zero padding on both sides
        nk = n // 2 + 1                # kept frequencies along W (real input)
        self.size, self.n, self.nk, self.out_ch = h, n, nk, out_ch
        pos = np.arange(h)
        # forward along W: (2, nk, W) rows (re/im, k): Re = sum x cos, Im = -sum x sin
        ang_w = 2 * np.pi * np.outer(np.arange(nk), pos) / n
        dw = np.stack([np.cos(ang_w), -np.sin(ang_w)])
        # forward along H on complex input (H, re/im): rows (re/im', f1), columns (h, re/im)
        ang_h = 2 * np.pi * np.outer(np.arange(n), pos) / n          # (N, H)
        cos_h, sin_h = np.cos(ang_h), np.sin(ang_h)
        mh = np.empty((2, n, h, 2))
        mh[0, :, :, 0], mh[0, :, :, 1] = cos_h, sin_h
        mh[1, :, :, 0], mh[1, :, :, 1] = -sin_h, cos_h
        # inverse along H (1/N): rows (h, re/im''), columns (re/im', f1)
        ih = np.empty((h, 2, 2, n))
        ih[:, 0, 0, :], ih[:, 0, 1, :] = cos_h.T / n, -sin_h.T / n
        ih[:, 1, 0, :], ih[:, 1, 1, :] = sin_h.T / n, cos_h.T / n
        # inverse along W to a real signal (1/N, Hermitian weights): (W, re/im, k)
        weight = np.full(nk, 2.0)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        iw = np.stack([weight[:, None] * np.cos(ang_w) / n,
                       -weight[:, None] * np.sin(ang_w) / n], axis=0).transpose(2, 0, 1)
        f32 = dict(dtype=torch.float32)
        self.dw = torch.tensor(dw.reshape(2 * nk, h), **f32)
        self.mh = torch.tensor(mh.reshape(2 * n, 2 * h), **f32)
        self.ih = torch.tensor(ih.reshape(2 * h, 2 * n), **f32)
        self.iw = torch.tensor(iw.reshape(h, 2 * nk), **f32)
        # circular kernel g with y = x (*) g, i.e. g[(p-u) % N, (p-v) % N] = w[u, v]
        g = torch.zeros(out_ch, in_ch, n, n, dtype=torch.float64)
        idx = (p - np.arange(k)) % n
        g[:, :, idx[:, None], idx[None, :]] = w
        spec = torch.fft.fft2(g)[..., :nk]                                 # (O, C, N, nk)
        spec = spec.permute(2, 3, 1, 0).reshape(n * nk, in_ch, out_ch)      # (F, C, O)
        self.wr = spec.real.to(torch.float32).contiguous()
        self.wi = spec.imag.to(torch.float32).contiguous()
        self.wi_neg = (-spec.imag).to(torch.float32).contiguous()
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_ch)
        self.bias = bias.to("cpu", torch.float32).clone()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(H, W, B, C)`` float32 -> ``(H, W, B, O)`` convolution plus bias (no activation)."""
        h, w, b, c = x.shape
        n, nk, o = self.n, self.nk, self.out_ch
        # along W: (2nk, W) @ (H, W, B*C) -> (H, 2, nk, B, C)
        a = torch.matmul(self.dw, x.reshape(h, w, b * c))
        # along H: (2N, 2H) @ (2H, nk*B*C) -> (2, N, nk, B, C)
        z = torch.mm(self.mh, a.view(2 * h, nk * b * c)).view(2, n * nk, b, c)
        zr, zi = z[0], z[1]
        # channel mixing per frequency: Y = Z * G (complex)
        y = torch.empty(2, n * nk, b, o)
        torch.bmm(zr, self.wr, out=y[0])
        y[0].baddbmm_(zi, self.wi_neg)
        torch.bmm(zr, self.wi, out=y[1])
        y[1].baddbmm_(zi, self.wr)
        # inverse along H: (2H, 2N) @ (2N, nk*B*O) -> (H, 2, nk, B, O)
        t = torch.mm(self.ih, y.view(2 * n, nk * b * o))
        # inverse along W: (W, 2nk) @ (H, 2nk, B*O) -> (H, W, B*O)
        out = torch.matmul(self.iw, t.view(h, 2 * nk, b * o)).view(h, w, b, o)
        return out.add_(self.bias)


def _maxpool2_hwbc(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling of an ``(H, W, B, C)`` tensor (H, W even)."""
    h, w, b, c = x.shape
    v = x.view(h // 2, 2, w // 2, 2, b * c)
    out = torch.maximum(v[:, 0, :, 0], v[:, 0, :, 1])
    out = torch.maximum(out, torch.maximum(v[:, 1, :, 0], v[:, 1, :, 1]), out=out)
    return out.view(h // 2, w // 2, b, c)


def _maxpool2_nchw(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling of an ``(N, C, H, W)`` tensor (H, W even), as ``nn.MaxPool2d(2)``."""
    n, c, h, w = x.shape
    v = x.view(n, c, h // 2, 2, w // 2, 2)
    return torch.maximum(torch.maximum(v[:, :, :, 0, :, 0], v[:, :, :, 0, :, 1]),
                         torch.maximum(v[:, :, :, 1, :, 0], v[:, :, :, 1, :, 1]))


#: Layer types of ``DeepHitsWithFeatures.conv`` this forward pass was written for.
_EXPECTED_LAYOUT = ("ZeroPad2d", "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                    "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Flatten")


class FastStampForward:
    """Frozen CPU inference copy of a :class:`DeepHitsWithFeatures` (eval mode semantics).

    Parameters
    ----------
    net : DeepHitsWithFeatures
        The trained network; the weights of the three 12x12 convolutions are transformed once
        (build a new object after the weights change).

    Notes
    -----
    ``forward(images (B, 3, 21, 21), features (B, 23)) -> logits (B, 5)``, equal to
    ``net.eval()(images, features)`` within float32 rounding. The two 24x24 convolutions run as
    direct (oneDNN) convolutions -- with only 32 channels the transforms would cost as much as
    they save there -- and the three 12x12 convolutions (70% of the multiply-adds) through
    :class:`DFTConv2d`. Dense layers and batch normalization are the module's own layers.
    """

    def __init__(self, net: DeepHitsWithFeatures) -> None:
        layers = list(net.conv)
        layout = tuple(type(m).__name__ for m in layers)
        if layout != _EXPECTED_LAYOUT:
            raise ValueError(f"unexpected stamp network layout {layout}")
        self.net = net
        self.head = nn.Sequential(*layers[:6]).eval()        # pad, conv, relu, conv, relu, pool
        # (its 2x2 max-pool runs as _maxpool2_nchw: 4x cheaper than MaxPool2d on one thread)
        pad, conv1 = layers[0], layers[1]
        side = CROP_SIZE + 2 * pad.padding[0] - conv1.weight.shape[-1] + 1   # 24
        self.dft = [DFTConv2d(layers[i], side // 2) for i in (6, 8, 10)]

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 5)`` of ``images (B, 3, 21, 21)`` and normalized ``features (B, 23)``."""
        net = self.net
        if net.training:
            raise ValueError("FastStampForward reproduces eval mode only; call net.eval() first")
        if tuple(images.shape[1:]) != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"images must have shape (n, 3, {CROP_SIZE}, {CROP_SIZE}), "
                             f"got {tuple(images.shape)}")
        b = images.shape[0]
        rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)], dim=0)
        h = rotated
        for layer in self.head[:5]:                                         # pad, conv, relu x2
            h = layer(h)
        h = _maxpool2_nchw(h).permute(2, 3, 0, 1).contiguous()              # (12, 12, 4B, 32)
        for conv in self.dft:
            h = torch.relu_(conv(h))
        h = _maxpool2_hwbc(h)                                               # (6, 6, 4B, 64)
        flat = h.permute(2, 3, 0, 1).reshape(4 * b, -1)                     # NCHW flatten order
        emb = torch.relu_(net.dense1(flat)).view(4, b, -1).mean(dim=0)
        z = torch.cat([emb, net.feature_norm(features)], dim=1)
        z = torch.relu_(net.dense2(z))
        z = torch.relu_(net.dense3(z))
        return net.logits(z)

    __call__ = forward


__all__ = ["DFTConv2d", "FastStampForward"]
