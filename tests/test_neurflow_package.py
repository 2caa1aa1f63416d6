"""The conceptscope.neurflow package: its re-exports, its imports, and a light settings import."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conceptscope import neurflow as nf

PACKAGE = Path(nf.__file__).parent

# __all__ of the flat modules the package replaced (conceptscope.neurflow, neurflow_circuit, neurflow_groups,
# neurflow_views): every name stays importable from the package
OLD_PUBLIC = """
METHODS PATCH_SCALES BlockChain adaptive_importance class_patches core_neurons importance integrated_gradients
make_patches spatial_mean top_k_patches
CIRCUIT_DEFAULTS CircuitResult build_circuit concept_means masking_effect
NeuronGroup SemanticGroup best_ward_clusters debugging_metric edge_weights group_edges neuron_groups rank_patches
semantic_groups
CIRCUIT_ANSWER_FORM CIRCUIT_INSTRUCTIONS CIRCUIT_PROMPT GROUP_ANSWER_FORM GROUP_INSTRUCTIONS GROUP_PROMPT PROMPT_ROLE
plot_circuit validate_circuit write_circuit_html write_labelling_export
""".split()


@pytest.mark.parametrize("name", OLD_PUBLIC)
def test_old_public_names_are_importable_from_the_package(name):
    assert name in nf.__all__
    module = importlib.import_module("conceptscope.neurflow")
    assert getattr(module, name) is not None
    exec(f"from conceptscope.neurflow import {name}", {})


def test_the_package_exports_exactly_each_modules_all():
    for module, names in nf._EXPORTS.items():
        assert sorted(names.split()) == sorted(importlib.import_module(f"conceptscope.neurflow.{module}").__all__)
    assert callable(nf.importance)  # the function, not a submodule of that name


def test_no_module_imports_another_paper():
    other = re.compile(r"^\s*(from|import)\s+(conceptscope\.|\.\.)(naps|nmf|nas|atlas)\b", re.M)
    offenders = [p.name for p in PACKAGE.glob("*.py") if other.search(p.read_text())]
    assert offenders == []


def test_reading_the_settings_loads_neither_matplotlib_nor_sklearn():
    code = (
        "import sys; from conceptscope.neurflow.settings import NeurFlowSettings; NeurFlowSettings(); "
        "print(sorted(m for m in ('matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
