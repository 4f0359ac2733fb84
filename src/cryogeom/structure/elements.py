"""Chemical elements of atoms: atomic numbers, and the element of an atom whose file does not say.

Some formats carry the element (PDB columns 77–78, mmCIF ``type_symbol``); CHARMM PSF, GRO and
many MD files do not. :func:`derive_elements` decides, per atom, in this order:

1. the element read from the file, when it is a real element symbol;
2. the atom's mass from the topology (PSF, TPR, PRMTOP carry real masses), when it is within
   0.1 u of the standard atomic weight of one of H, C, N, O, S, P, Se (hydrogen-mass
   repartitioning moves H to ~3 u, and then the mass says nothing and step 3 decides);
3. the atom name, by MDAnalysis's default guesser (protein atom names start with their element:
   N, CA, CB, OG1, SD, HB2, 1HB …), except that ``SE`` of selenomethionine is selenium.
"""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError

# Standard atomic weights (u) of the elements found in proteins and their common cofactors.
_MASS_ELEMENTS = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "S": 32.06, "P": 30.974, "Se": 78.97}
_MASS_TOLERANCE = 0.1


def atomic_number(element: str) -> int:
    """Atomic number Z of an element symbol (any case); 0 if the symbol is not an element."""
    import gemmi

    symbol = str(element).strip()
    return gemmi.Element(symbol).atomic_number if symbol else 0


def atomic_numbers(elements) -> np.ndarray:
    """Atomic numbers [A] (int64) of element symbols [A]; InputError if a symbol is not an element."""
    elements = np.asarray(elements, dtype=str)
    unique, inverse = np.unique(elements, return_inverse=True)
    z = np.array([atomic_number(e) for e in unique], dtype=np.int64)
    if np.any(z == 0):
        bad = [str(e) for e, zz in zip(unique, z) if zz == 0]
        raise InputError(f"atom elements {bad} are not chemical element symbols (expected e.g. C, N, O, S, H)")
    return z[inverse.reshape(-1)].reshape(elements.shape)


def element_symbol(text: str) -> str:
    """'CA'/'ca' → 'Ca', ' c' → 'C'; '' if ``text`` is not an element symbol."""
    symbol = str(text).strip().capitalize()
    return symbol if symbol and atomic_number(symbol) > 0 and symbol != "X" else ""


def element_from_mass(mass_u: float) -> str:
    """The element whose standard atomic weight is within 0.1 u of ``mass_u``, or ''."""
    for symbol, weight in _MASS_ELEMENTS.items():
        if abs(float(mass_u) - weight) < _MASS_TOLERANCE:
            return symbol
    return ""


def element_from_name(atom_name: str, resname: str = "") -> str:
    """The element of a protein atom guessed from its name (MDAnalysis's default guesser)."""
    from MDAnalysis.guesser.default_guesser import DefaultGuesser

    name = str(atom_name).strip().upper()
    if name == "SE" and str(resname).strip().upper() == "MSE":
        return "Se"
    return element_symbol(DefaultGuesser(None).guess_atom_element(name))


def derive_elements(atom_names, resnames, file_elements=None, masses_u=None, *, source: str = "") -> np.ndarray:
    """Element symbols [A] for atoms [A]: from the file, else the mass, else the name (module doc).

    ``atom_names`` [A] and ``resnames`` [A] (the atom's residue name as in the file) are strings;
    ``file_elements`` [A] (may contain '') and ``masses_u`` [A] (atomic mass units) are optional.
    Raises InputError naming the first atom whose element cannot be determined.
    """
    atom_names = np.asarray(atom_names, dtype=str)
    resnames = np.asarray(resnames, dtype=str)
    out = np.full(len(atom_names), "", dtype="<U2")
    if file_elements is not None:
        file_elements = np.asarray(file_elements, dtype=str)
        lookup = {e: element_symbol(e) for e in np.unique(file_elements)}
        out[:] = [lookup[e] for e in file_elements]
    if masses_u is not None:
        todo = out == ""
        masses = np.round(np.asarray(masses_u, dtype=np.float64)[todo], 4)
        lookup = {m: element_from_mass(m) for m in np.unique(masses)}
        out[todo] = [lookup[m] for m in masses]
    todo = np.flatnonzero(out == "")
    if len(todo):
        pairs = list(zip(atom_names[todo], resnames[todo]))
        lookup = {p: element_from_name(*p) for p in set(pairs)}
        out[todo] = [lookup[p] for p in pairs]
    missing = np.flatnonzero(out == "")
    if len(missing):
        i = missing[0]
        raise InputError(
            f"cannot tell the element of atom {atom_names[i]!r} (residue {resnames[i]}) in {source or 'the structure'}: "
            f"expected an element column, atomic masses or standard atom names"
        )
    return out
