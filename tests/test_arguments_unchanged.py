"""No public function modifies its arguments: the NAP, NMF and NAS entry points on copies compared afterwards
(NeurFlow's are checked in tests/test_neurflow_inputs.py)."""

from __future__ import annotations

import numpy as np
import torch

from conceptscope import naps, nas, nmf


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    full = rng.standard_normal((40, 4 * 3 * 3)).astype(np.float32)
    maps = full.reshape(40, 4, 9)
    return {
        "full": full,
        "mean": maps.mean(2),
        "max": maps.max(2),
        "min": maps.min(2),
        "std": maps.std(2),
    }


def test_nap_functions_leave_their_inputs_alone():
    arrays = _arrays()
    before = {k: v.copy() for k, v in arrays.items()}
    labels, preds, ids = np.arange(40) % 3, np.arange(40) % 2, np.arange(40)
    kept = (labels.copy(), preds.copy(), ids.copy())
    for method in naps.DISENTANGLEMENTS:
        X = naps.disentangle(arrays, "conv", method)
        X0 = X.copy()
        naps.normalize(X, kind="conv", method=method, unit_shape=(4, 3, 3))
        naps.extract_naps(
            X, kind="conv", method=method, unit_shape=(4, 3, 3), labels=labels, predictions=preds, sample_ids=ids
        )
        np.testing.assert_array_equal(X, X0)
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, before[k])
    for a, b in zip((labels, preds, ids), kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_nmf_solvers_leave_their_matrices_alone():
    g = torch.Generator().manual_seed(0)
    D = [torch.rand(16, 30, generator=g, dtype=torch.float64)]
    A = [torch.rand(24, 30, generator=g, dtype=torch.float64), torch.rand(8, 30, generator=g, dtype=torch.float64)]
    copies = [m.clone() for m in (*D, *A)]
    for scaling in ("frobenius", "none"):
        nmf.fit_coupled(D, A, n_components=3, max_iter=5, dtype=torch.float64, block_scaling=scaling)
        nmf.fit_single(A[0], n_components=3, max_iter=5, dtype=torch.float64, block_scaling=scaling)
        nmf.fit_group_sparse(D, A, torch.arange(30) % 3, lam_group=0.1, n_components=3, max_iter=5, dtype=torch.float64)
    for m, c in zip((*D, *A), copies, strict=True):
        torch.testing.assert_close(m, c, rtol=0, atol=0)


def test_nas_functions_leave_their_inputs_alone():
    arrays = _arrays(1)
    before = {k: v.copy() for k, v in arrays.items()}
    values = nas.unit_activations(arrays, "conv")
    v0, labels = values.copy(), np.arange(40) % 4
    s = nas.summarize_layer(values, labels, ["a", "b", "c", "d"], m=5)
    nas.classify_units(s)
    np.testing.assert_array_equal(values, v0)
    np.testing.assert_array_equal(labels, np.arange(40) % 4)
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, before[k])
