"""Networks (layer 2): step embeddings, FiLM conditioning and denoisers.

Introduced in chapter 3 (:class:`SinusoidalTimeEmbedding`, :class:`FiLM`, :class:`MLPDenoiser`) and
chapter 8 (:class:`ConditionalUnet1D`, the temporal U-Net of Diffusion Policy) and chapter 9 (the vision
encoder: :class:`ResNet18GN`, :class:`SpatialSoftmax`, :class:`ImageEncoder`, and the crop augmentation)
and chapter 10 (:class:`TransformerDenoiser`, the transformer variant).
"""

from dplearn.nets.crop import RandomCrop, center_crop, crop, random_crop
from dplearn.nets.embeddings import SinusoidalTimeEmbedding
from dplearn.nets.film import FiLM
from dplearn.nets.mlp import FiLMResidualBlock, MLPDenoiser, mlp
from dplearn.nets.transformer import TransformerDenoiser
from dplearn.nets.unet1d import ConditionalResidualBlock1D, ConditionalUnet1D, Conv1dBlock
from dplearn.nets.vision import ImageEncoder, ResNet18GN, SpatialSoftmax

__all__ = ["SinusoidalTimeEmbedding", "FiLM", "FiLMResidualBlock", "MLPDenoiser", "Conv1dBlock",
           "ConditionalResidualBlock1D", "ConditionalUnet1D", "ResNet18GN", "SpatialSoftmax", "ImageEncoder",
           "RandomCrop", "crop", "random_crop", "center_crop", "TransformerDenoiser", "mlp"]
