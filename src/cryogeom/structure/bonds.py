"""Which consecutive residues are covalently bonded (the pairs of the bond loss, paper section 2).

Rule: residues i and i+1 (in file order) form a bonded pair when all of these hold

1. they are in the same chain (same chain ID);
2. their numbering is consecutive: resid(i+1) = resid(i) + 1, or the same resid with a
   different insertion code (52 → 52A → 52B → 53 is one unbroken stretch);
3. their Cα atoms are at most ``max_ca_distance_angstrom`` (4.3 Å) apart in the given
   coordinates — trans peptides have 3.80 Å, cis 2.9 Å; this catches breaks that the numbering
   hides (GRO files without chains, renumbered models, residues missing without a gap).

Numbering schemes that skip numbers inside a continuous chain (Kabat-numbered antibodies) lose
those pairs: a missing bond term only removes a regulariser, a wrong one fights the data.
"""

from __future__ import annotations

import numpy as np

MAX_CA_DISTANCE_ANGSTROM = 4.3


def consecutive_bonded_pairs(
    chain_ids,
    resids,
    icodes=None,
    ca_angstrom=None,
    max_ca_distance_angstrom: float = MAX_CA_DISTANCE_ANGSTROM,
) -> np.ndarray:
    """Bonded pairs [M, 2] (int64, i < j = i + 1) of residues [N] by the rule in the module doc.

    ``chain_ids`` [N] str, ``resids`` [N] int, ``icodes`` [N] str ('' for none; None = no
    insertion codes), ``ca_angstrom`` [N, 3] (None skips the distance test).
    """
    chain_ids = np.asarray(chain_ids, dtype=str)
    resids = np.asarray(resids, dtype=np.int64)
    n = len(resids)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    icodes = np.full(n, "", dtype="<U1") if icodes is None else np.asarray(icodes, dtype=str)
    same_chain = chain_ids[1:] == chain_ids[:-1]
    step = resids[1:] - resids[:-1]
    consecutive = (step == 1) | ((step == 0) & (icodes[1:] != icodes[:-1]))
    bonded = same_chain & consecutive
    if ca_angstrom is not None:
        ca = np.asarray(ca_angstrom, dtype=np.float64)
        bonded &= np.linalg.norm(ca[1:] - ca[:-1], axis=1) <= max_ca_distance_angstrom
    first = np.flatnonzero(bonded)
    return np.stack([first, first + 1], axis=1).astype(np.int64)
