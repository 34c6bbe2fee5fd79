"""Rotation-invariant Deep-HiTS network with cyclic average pooling (reference 4.3)."""

from __future__ import annotations

import torch
from torch import nn

from alerce.classifiers.stamp.constants import CLASSES, CROP_SIZE, FEATURE_NAMES


class DeepHitsWithFeatures(nn.Module):
    """Conv stack shared by the four ``rot90`` copies, cyclic pooling, metadata head.

    Parameters
    ----------
    kernel_size : int
        K of the "SAME" convolutions (5 in the deployed model).
    dropout : float
        Dropout rate of the three hidden dense layers (active only in training).
    n_features : int
        Number of metadata features (23).
    n_classes : int
        Number of output logits (5).

    Notes
    -----
    ``forward(images, features)`` takes ``images`` of shape ``(B, 3, 21, 21)`` and ``features``
    ``(B, 23)`` (already clipped and z-scored) and returns logits ``(B, 5)``. The batch is expanded
    to ``4B`` with ``rot90^k`` (k = 0..3) and the 64-d embeddings are averaged over the rotations,
    so rotating the input by 90 degrees leaves the output unchanged.
    """

    def __init__(self, kernel_size: int = 5, dropout: float = 0.5,
                 n_features: int = len(FEATURE_NAMES), n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.kernel_size, self.dropout_rate = kernel_size, dropout
        self.conv = nn.Sequential(
            nn.ZeroPad2d(3),                                    # 27x27x3
            nn.Conv2d(3, 32, 4), nn.ReLU(),                     # 24x24x32 (VALID)
            nn.Conv2d(32, 32, kernel_size, padding=pad), nn.ReLU(),
            nn.MaxPool2d(2),                                    # 12x12x32
            nn.Conv2d(32, 64, kernel_size, padding=pad), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size, padding=pad), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size, padding=pad), nn.ReLU(),
            nn.MaxPool2d(2),                                    # 6x6x64
            nn.Flatten(),
        )
        side = (CROP_SIZE + 6 - 3) // 4
        self.dense1 = nn.Linear(64 * side * side, 64)
        self.feature_norm = nn.BatchNorm1d(n_features)
        self.dense2 = nn.Linear(64 + n_features, 64)
        self.dense3 = nn.Linear(64, 64)
        self.logits = nn.Linear(64, n_classes)
        self.drop = nn.Dropout(dropout)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Rotation-averaged 64-d embedding of ``(B, 3, H, W)`` images."""
        b = images.shape[0]
        rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)], dim=0)
        h = self.drop(torch.relu(self.dense1(self.conv(rotated))))
        return h.reshape(4, b, -1).mean(dim=0)  # cyclic average pooling

    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.embed(images), self.feature_norm(features)], dim=1)
        h = self.drop(torch.relu(self.dense2(h)))
        h = self.drop(torch.relu(self.dense3(h)))
        return self.logits(h)


def entropy_regularized_loss(logits: torch.Tensor, target: torch.Tensor,
                             beta: float = 0.5) -> torch.Tensor:
    """``mean(CE(y, softmax(z)) - beta * H(softmax(z)))`` (reference 4.4).

    Parameters
    ----------
    logits : (B, C) tensor
    target : (B,) int64 tensor of class indices
    beta : float
        Weight of the prediction entropy ``H = -sum p log p`` (0.5 for the deployed model).
    """
    log_p = torch.log_softmax(logits, dim=1)
    ce = -log_p.gather(1, target.reshape(-1, 1)).squeeze(1)
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    return (ce - beta * entropy).mean()
