"""Networks (layer 2): step embeddings, FiLM conditioning and denoisers.

Introduced in chapter 3 (:class:`SinusoidalTimeEmbedding`, :class:`FiLM`, :class:`MLPDenoiser`) and
chapter 8 (:class:`ConditionalUnet1D`, the temporal U-Net of Diffusion Policy).
"""

from dplearn.nets.embeddings import SinusoidalTimeEmbedding
from dplearn.nets.film import FiLM
from dplearn.nets.mlp import FiLMResidualBlock, MLPDenoiser
from dplearn.nets.unet1d import ConditionalResidualBlock1D, ConditionalUnet1D, Conv1dBlock

__all__ = ["SinusoidalTimeEmbedding", "FiLM", "FiLMResidualBlock", "MLPDenoiser", "Conv1dBlock",
           "ConditionalResidualBlock1D", "ConditionalUnet1D"]
