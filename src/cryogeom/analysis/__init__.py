"""What to do with a trained latent space: PCA, PC traversals, k-means, latent-region selections.

* :func:`fit_pca` → :class:`LatentPCA` (``pca.py``): principal directions of the latents.
* :func:`pc_traversal` (``traversal.py``): latents along a PC, 5th → 95th percentile.
* :func:`kmeans_latents` → :class:`KMeansResult` (``kmeans.py``): clusters, sizes, representatives.
* :func:`parse_selection` → :class:`Selection` (``selection.py``): ``cluster=3``, ``pc1>0.2,pc2<0``.
* :func:`decode_latents` (``decode.py``): latents → Cα in the base structure's frame.
* :func:`analyze_latents`, :func:`write_analysis` (``latent_analysis.py``): all of it, written to a
  directory (``cryogeom analyze``).
"""

from cryogeom.analysis.decode import decode_latents
from cryogeom.analysis.kmeans import KMeansResult, kmeans_latents
from cryogeom.analysis.latent_analysis import AnalysisSettings, LatentAnalysis, analyze_latents, write_analysis
from cryogeom.analysis.pca import LatentPCA, fit_pca
from cryogeom.analysis.selection import Selection, parse_selection
from cryogeom.analysis.traversal import Traversal, pc_traversal

__all__ = [
    "AnalysisSettings",
    "KMeansResult",
    "LatentAnalysis",
    "LatentPCA",
    "Selection",
    "Traversal",
    "analyze_latents",
    "decode_latents",
    "fit_pca",
    "kmeans_latents",
    "parse_selection",
    "pc_traversal",
    "write_analysis",
]
