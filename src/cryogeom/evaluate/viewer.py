"""The report's interactive 3D view of the learned motion (3Dmol.js, embedded so it works offline).

Shows, over the base structure's Cα trace (grey), each PC traversal of ``analysis/`` as an
animated Cα trace (a multi-model PDB played back and forth) and the k-means cluster centres,
chosen from a menu. Everything — the 3Dmol.js library (bundled in ``evaluate/vendor/``), the
structures and the script — is inside the page; nothing is fetched.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

from cryogeom import run_dir as rd

_VIEWER_ID = "motion-3d"


def _ca_only(pdb_text: str) -> str:
    """The Cα atoms (and model records) of a PDB text: traces draw from Cα alone."""
    keep = []
    for line in pdb_text.splitlines():
        if line.startswith(("ATOM", "HETATM")):
            if line[12:16].strip() == "CA":
                keep.append(line)
        elif line.startswith(("MODEL", "ENDMDL", "TER", "END")):
            keep.append(line)
    return "\n".join(keep) + "\n"


def motion_structures(run_dir) -> dict[str, str]:
    """{label: PDB text} of the learned motion in ``run_dir/analysis``: PC traversals, cluster centres."""
    folder = Path(run_dir) / rd.ANALYSIS_DIR
    found = {}
    for path in sorted(folder.glob("pc*_traversal.pdb")):
        found[f"{path.stem.split('_')[0].upper()} traversal"] = path.read_text()
    centres = folder / "cluster_centres.pdb"
    if centres.is_file():
        found["k-means cluster centres"] = centres.read_text()
    return found


def _library() -> str:
    return resources.files("cryogeom.evaluate").joinpath("vendor/3Dmol-min.js").read_text(encoding="utf-8")


def viewer_section(run_dir) -> str:
    """The HTML of the 3D view, or a note when ``cryogeom analyze`` has not written the structures."""
    run_dir = Path(run_dir)
    structures = motion_structures(run_dir)
    if not structures:
        return ('<h2>The learned motion in 3D</h2>\n<p class="note">Run <code>cryogeom analyze RUN/</code> to see the '
                "principal motions and cluster centres here.</p>")
    base = run_dir / rd.BASE
    data = {"base": _ca_only(base.read_text()) if base.is_file() else "", "motions": {k: _ca_only(v) for k, v in structures.items()}}
    options = "".join(f'<option value="{html.escape(k)}">{html.escape(k)}</option>' for k in structures)
    payload = json.dumps(data).replace("</", "<\\/")  # no "</script>" inside the script element
    return f"""<h2>The learned motion in 3D</h2>
<p class="note">Cα traces over the base structure (grey): a PC traversal plays the conformations
along one principal direction of the latent space back and forth (blue to red along the chain);
the cluster centres are the k-means representatives. Drag to turn, scroll to zoom. The same files
open in ChimeraX (<code>analysis/pc1_traversal.pdb</code>, then <code>mseries slider #1</code>).</p>
<p><label>show <select id="{_VIEWER_ID}-choice">{options}</select></label></p>
<div id="{_VIEWER_ID}" style="width: 100%; max-width: 900px; height: 520px; position: relative; border: 1px solid #c9d3e0;"></div>
<script>{_library()}</script>
<script>
(function () {{
  const data = {payload};
  const element = document.getElementById("{_VIEWER_ID}");
  const choice = document.getElementById("{_VIEWER_ID}-choice");
  let viewer = null;
  try {{
    viewer = $3Dmol.createViewer(element, {{backgroundColor: "white"}});
  }} catch (error) {{
    element.textContent = "This browser cannot draw 3D (WebGL is off): " + error;
    element.dataset.drawn = "no";
    return;
  }}
  function show(label) {{
    viewer.stopAnimate();
    viewer.clear();
    if (data.base) {{
      viewer.addModel(data.base, "pdb").setStyle({{}}, {{cartoon: {{style: "trace", color: "#b8bec8", thickness: 0.3}}}});
    }}
    const motion = viewer.addModelsAsFrames(data.motions[label], "pdb");
    motion.setStyle({{}}, {{cartoon: {{style: "trace", color: "spectrum", thickness: 0.6}}, sphere: {{radius: 0.6, color: "#3a6fc4"}}}});
    viewer.zoomTo();
    viewer.render();
    if (motion.getNumFrames && motion.getNumFrames() > 1) {{
      viewer.animate({{loop: "backAndForth", interval: 180}});
    }}
    element.dataset.drawn = "yes";
    element.dataset.shown = label;
  }}
  choice.addEventListener("change", function () {{ show(choice.value); }});
  show(choice.value);
}})();
</script>"""
