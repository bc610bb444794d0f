"""Ketamine pharmacokinetics with an effect-site compartment, stepped exactly.

Owns: the linear mammillary models (Domino 3-compartment, Clements 2-compartment, rate
constants from ``data/model.toml``), the effect site (dCe/dt = ke0 (Cp - Ce)), and their
exact discrete-time update over a fixed step: x' = Phi x + Gamma u with
Phi = expm(M dt) and Gamma = integral_0^dt expm(M s) b ds, computed once per patient with
an augmented matrix exponential. State x = [A1, A2, A3 (mg), Ce (ug/mL)], input u =
infusion rate in mg/s, Cp = A1 / V1 (mg/L = ug/mL).

Works for one patient (plain floats: fast stepping) or many at once (each coefficient an
array over patients), with the same code.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PK_MODELS = ("domino", "clements")


def expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential of a (batch of) square matrices: scaling and squaring with a
    degree-18 Taylor polynomial (exact to float precision for the small, well-conditioned
    compartment matrices used here)."""
    a = np.asarray(a, dtype=float)
    norm = np.max(np.sum(np.abs(a), axis=-2)) if a.size else 0.0
    squarings = max(0, int(np.ceil(np.log2(norm / 0.5))) + 1) if norm > 0.5 else 0
    scaled = a / (2.0**squarings)
    n = a.shape[-1]
    eye = np.broadcast_to(np.eye(n), a.shape).copy()
    result = eye.copy()
    term = eye.copy()
    for k in range(1, 19):
        term = term @ scaled / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


def rate_matrix(pk: dict[str, Any], weight_kg, cl_factor, v_factor, ke0_per_min: float):
    """The continuous-time system (per second): M (..., 4, 4), b (..., 4), V1 (...)."""
    cl_factor = np.atleast_1d(np.asarray(cl_factor, dtype=float))
    v_factor = np.atleast_1d(np.asarray(v_factor, dtype=float))
    weight = np.broadcast_to(np.asarray(weight_kg, dtype=float), cl_factor.shape)
    n = cl_factor.shape[0]
    v1 = pk["v1_l_per_kg"] * weight * v_factor
    k10 = pk["k10_per_min"] * cl_factor / v_factor
    k12, k13 = pk["k12_per_min"], pk["k13_per_min"]
    k21, k31 = pk["k21_per_min"], pk["k31_per_min"]
    m = np.zeros((n, 4, 4))
    m[:, 0, 0] = -(k10 + k12 + k13)
    m[:, 0, 1] = k21
    m[:, 0, 2] = k31
    m[:, 1, 0] = k12
    m[:, 1, 1] = -k21
    m[:, 2, 0] = k13
    m[:, 2, 2] = -k31
    m[:, 3, 0] = ke0_per_min / v1
    m[:, 3, 3] = -ke0_per_min
    m /= 60.0  # per minute -> per second
    b = np.zeros((n, 4))
    b[:, 0] = 1.0  # mg/s into the central compartment
    return m, b, v1


def discretise(m: np.ndarray, b: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact zero-order-hold discretisation: (Phi, Gamma) for a step of ``dt_s`` seconds."""
    n = m.shape[0]
    aug = np.zeros((n, 5, 5))
    aug[:, :4, :4] = m
    aug[:, :4, 4] = b
    e = expm(aug * dt_s)
    return e[:, :4, :4], e[:, :4, 4]


class PkState:
    """Amounts and effect-site concentration of one patient (floats) or many (arrays)."""

    __slots__ = ("a1", "a2", "a3", "ce", "_phi", "_gam", "v1")

    def __init__(self, pk: dict[str, Any], weight_kg, cl_factor, v_factor, ke0_per_min: float,
                 dt_s: float, batch: bool) -> None:
        m, b, v1 = rate_matrix(pk, weight_kg, cl_factor, v_factor, ke0_per_min)
        phi, gam = discretise(m, b, dt_s)
        if batch:
            self._phi = [[phi[:, i, j].copy() for j in range(4)] for i in range(4)]
            self._gam = [gam[:, i].copy() for i in range(4)]
            self.v1 = v1
            zero = np.zeros(v1.shape[0])
            self.a1, self.a2, self.a3, self.ce = zero.copy(), zero.copy(), zero.copy(), zero.copy()
        else:
            self._phi = [[float(phi[0, i, j]) for j in range(4)] for i in range(4)]
            self._gam = [float(gam[0, i]) for i in range(4)]
            self.v1 = float(v1[0])
            self.a1 = self.a2 = self.a3 = self.ce = 0.0

    @property
    def cp(self):
        """Plasma concentration, ug/mL."""
        return self.a1 / self.v1

    def bolus(self, mg) -> None:
        self.a1 = self.a1 + mg

    def step(self, rate_mg_s) -> None:
        """Advance one fixed step with the pump at ``rate_mg_s`` (constant over the step)."""
        p, g = self._phi, self._gam
        x0, x1, x2, x3 = self.a1, self.a2, self.a3, self.ce
        self.a1 = p[0][0] * x0 + p[0][1] * x1 + p[0][2] * x2 + p[0][3] * x3 + g[0] * rate_mg_s
        self.a2 = p[1][0] * x0 + p[1][1] * x1 + p[1][2] * x2 + p[1][3] * x3 + g[1] * rate_mg_s
        self.a3 = p[2][0] * x0 + p[2][1] * x1 + p[2][2] * x2 + p[2][3] * x3 + g[2] * rate_mg_s
        self.ce = p[3][0] * x0 + p[3][1] * x1 + p[3][2] * x2 + p[3][3] * x3 + g[3] * rate_mg_s
