"""driftrec: recommendations that follow each user's drifting interests."""

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories

__version__ = "0.1.0"
__all__ = ["Dataset", "Histories", "__version__"]
