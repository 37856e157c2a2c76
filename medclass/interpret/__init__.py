"""Interpretation: heatmaps (CAM, Grad-CAM, Grad-CAM++, occlusion), filters and activation maps.

It reaches into a model only through names from its model card (``cam_layer``, ``classifier``) or given
by the user, never by guessing.
"""

from .filters import first_conv_filters, layer_activations
from .heatmaps import METHODS, compute_heatmaps, resolve_layer

__all__ = ["METHODS", "compute_heatmaps", "resolve_layer", "first_conv_filters", "layer_activations"]
