"""Networks (layer 2): step embeddings, FiLM conditioning and denoisers.

Introduced in chapter 3 (:class:`SinusoidalTimeEmbedding`, :class:`FiLM`, :class:`MLPDenoiser`).
"""

from dplearn.nets.embeddings import SinusoidalTimeEmbedding
from dplearn.nets.film import FiLM
from dplearn.nets.mlp import FiLMResidualBlock, MLPDenoiser

__all__ = ["SinusoidalTimeEmbedding", "FiLM", "FiLMResidualBlock", "MLPDenoiser"]
