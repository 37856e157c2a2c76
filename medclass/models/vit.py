"""ViT-Tiny (Dosovitskiy et al., ICLR 2021; the DeiT-Tiny size: 12 blocks, width 192, 3 heads) from timm.

timm's ``VisionTransformer`` with three medclass choices:

- The patch size follows the image: the smallest of 4, 8 and 16 that gives at most 16x16 patches (4 px
  patches at 28-64 px, 8 at 65-128 px, 16 from 129 px; 224 px -> 14x14 as published);
  ``dynamic_img_size`` and ``dynamic_img_pad`` let the built model run at other sizes, including sides
  that are not a multiple of the patch (position embeddings are interpolated, the image zero-padded).
  ImageNet weights (16 px patches, 224 px) are resampled to the model's patch and grid by timm's
  ``checkpoint_filter_fn`` (FlexiViT patch resampling, bicubic position embeddings).
- The head averages the patch tokens (``global_pool='avg'``) after the final layer norm and applies one
  linear layer, with no norm in between; the class token is kept, so published weights still fit.
- ``forward_features`` returns the patch tokens as a ``(N, 192, h, w)`` map, produced by the
  parameter-free module ``token_map``: CAM (exact, since the head is pool-then-linear) and Grad-CAM hook it.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from ._registry import INCEPTION_MEAN, INCEPTION_STD, register_model

__all__ = ["ViT", "vit_tiny", "vit_patch_size"]


def vit_patch_size(input_size: int) -> int:
    """The smallest of 4, 8, 16 giving at most 16 patches per side (16 for larger images)."""
    return next((p for p in (4, 8) if input_size / p <= 16), 16)


class TokenMap(nn.Module):
    """Patch tokens ``(N, prefix + h*w, D)`` -> feature map ``(N, D, h, w)`` (drops class/register tokens)."""

    def __init__(self, num_prefix_tokens: int):
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = x[:, self.num_prefix_tokens:]
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid)


class ViT(VisionTransformer):
    """timm's VisionTransformer whose features are a spatial map and whose head is average-pool + linear."""

    def __init__(self, **kwargs):
        super().__init__(global_pool="avg", fc_norm=False, dynamic_img_size=True, dynamic_img_pad=True, **kwargs)
        self.token_map = TokenMap(self.num_prefix_tokens)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.patch_embed.dynamic_feat_size(tuple(x.shape[-2:]))
        return self.token_map(super().forward_features(x), grid)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.fc_norm(x.mean((2, 3))))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Resample published patch embeddings and position embeddings to this model (timm's own filter)."""
        return checkpoint_filter_fn(state_dict, self)


@register_model(family="vit", classifier="head", cam_layer="token_map", min_input_size=8, in_chans=3,
                mean=INCEPTION_MEAN, std=INCEPTION_STD, first_conv="patch_embed.proj",
                blocks=("patch_embed",) + tuple(f"blocks.{i}" for i in range(12)),
                imagenet_weights="timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k",
                description="ViT-Tiny (timm, 5.5M parameters); 4 px patches at 28-64 px, 16 px at 224 px",
                reference="A. Dosovitskiy et al., An image is worth 16x16 words: Transformers for image "
                          "recognition at scale. ICLR 2021.")
def vit_tiny(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
             patch_size: int | None = None) -> ViT:
    return ViT(img_size=input_size, patch_size=patch_size or vit_patch_size(input_size), in_chans=in_chans,
               num_classes=num_classes, embed_dim=192, depth=12, num_heads=3, drop_rate=drop_rate)
