"""The results-tree comparison that shows a refactor moved no result."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np

from conceptscope.compare import compare_trees, main


def _tree(root, value=1.0):
    (root / "reproduction").mkdir(parents=True)
    (root / "reproduction/claims.csv").write_text("claim_id,verdict\nNAP-1,PASS\n")
    (root / "figures/naps").mkdir(parents=True)
    (root / "figures/naps/fig6_m.csv").write_text("layer,n\nfc,3\n")
    (root / "figures/naps/fig6_m.png").write_bytes(b"png, not compared")
    (root / "naps/m").mkdir(parents=True)
    with h5py.File(root / "naps/m/fc.h5", "w") as f:
        f["nap"] = np.arange(5)
        f.create_group("stats")["mean"] = np.full(3, value, dtype=np.float32)
        f.attrs["provenance"] = str(root)  # attributes differ between runs and are not compared
    return root


def test_identical_trees(tmp_path):
    res = compare_trees(_tree(tmp_path / "a"), _tree(tmp_path / "b"))
    assert res.identical and res.files == 3 and res.datasets == 2


def test_a_changed_dataset_a_changed_csv_and_a_missing_file_are_each_reported(tmp_path, capsys):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", value=1.0 + 2**-20)
    (b / "figures/naps/fig6_m.csv").write_text("layer,n\nfc,4\n")
    shutil.rmtree(b / "reproduction")
    res = compare_trees(a, b)
    assert sorted(res.differences) == [
        "figures/naps/fig6_m.csv: differs",
        "naps/m/fc.h5:stats/mean: differs ((3,) float32 vs (3,) float32)",
        "reproduction/claims.csv: only in a",
    ]
    assert main([str(a), str(b)]) == 1
    assert "3 differences" in capsys.readouterr().out


def test_dtype_change_with_equal_values_differs(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    with h5py.File(b / "naps/m/fc.h5", "a") as f:
        del f["nap"]
        f["nap"] = np.arange(5, dtype=np.int32)
    assert compare_trees(a, b).differences == ["naps/m/fc.h5:nap: differs ((5,) int64 vs (5,) int32)"]


def test_wall_clock_columns_are_left_out_but_counted(tmp_path, capsys):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (a / "figures/naps/t.csv").write_text("layer,n_naps,clustering_seconds\nfc,3,0.51\n")
    (b / "figures/naps/t.csv").write_text("layer,n_naps,clustering_seconds\nfc,3,0.72\n")
    res = compare_trees(a, b)
    assert res.identical and res.timing_only == ["figures/naps/t.csv"]
    (b / "figures/naps/t.csv").write_text("layer,n_naps,clustering_seconds\nfc,4,0.72\n")
    assert compare_trees(a, b).differences == ["figures/naps/t.csv: differs"]
    assert main([str(a), str(b)]) == 1
    assert "1 differences" in capsys.readouterr().out


def test_json_files_are_compared_without_their_seconds(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    for root, seconds, nodes in ((a, 1.5, [1, 2]), (b, 2.5, [1, 2])):
        (root / "neurflow/m/class0").mkdir(parents=True)
        (root / "neurflow/m/class0/circuit.json").write_text(json.dumps({"seconds": seconds, "nodes": nodes}))
    res = compare_trees(a, b)
    assert res.identical and res.timing_only == ["neurflow/m/class0/circuit.json"]
    (b / "neurflow/m/class0/circuit.json").write_text(json.dumps({"seconds": 2.5, "nodes": [1, 3]}))
    assert compare_trees(a, b).differences == ["neurflow/m/class0/circuit.json: differs"]


def test_claim_rows_measured_from_cpu_times_are_left_out(tmp_path):
    """NF-5 (CPU-time ratios) may differ between two runs; any other claim row may not."""
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (a / "reproduction/claims.csv").write_text("claim_id,verdict\nNAP-1,PASS\nNF-5,FAIL\n")
    (b / "reproduction/claims.csv").write_text("claim_id,verdict\nNAP-1,PASS\nNF-5,PASS\n")
    assert compare_trees(a, b).timing_only == ["reproduction/claims.csv"]
    (b / "reproduction/claims.csv").write_text("claim_id,verdict\nNAP-1,FAIL\nNF-5,PASS\n")
    assert compare_trees(a, b).differences == ["reproduction/claims.csv: differs"]
    (a / "figures/naps/f10.csv").write_text("method,cpu_seconds_per_target,ratio_to_ig\nlrp,0.2,0.5\n")
    (b / "figures/naps/f10.csv").write_text("method,cpu_seconds_per_target,ratio_to_ig\nlrp,0.3,0.6\n")
    assert "figures/naps/f10.csv" in compare_trees(a, b).timing_only
