"""The per-paper layout: each paper package gives the old public names, imports only the foundation, and its
settings can be read (at workflow parse time) without loading matplotlib, captum or scikit-learn."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(importlib.import_module("conceptscope").__file__).parent
PAPERS = ("naps", "nmf", "nas", "neurflow")

# __all__ of the flat modules the packages replaced (naps + nap_views, nmf + nmf_analysis + tcav, nas + nas_views,
# neurflow + neurflow_circuit + neurflow_groups + neurflow_views): every name stays importable from the package
OLD_PUBLIC = {
    "naps": """DISENTANGLEMENTS HDBSCAN_PARAMS NORMALIZATIONS STATISTIC_NAMES ClusterResult NapResult cluster
        disentangle extract_naps feature_units load_result normalize pairwise_distances save_result unit_statistics
        plot_aggregation_gallery plot_follow_image plot_models_side_by_side plot_nap_gallery write_browser""",
    "nmf": """INITS UPDATES CoupledNMF CoupledNMFResult fit_coupled fit_group_sparse fit_single nndsvd objective
        accuracy_vs_impurity class_weights cosine_similarity diagonal_dominance eigen_mean factor_table
        latent_neighbours neighbour_distribution pixel_masks plot_accuracy_vs_impurity plot_eigen_means
        plot_factor_table plot_masks_and_neighbours plot_similarity_heatmaps top_examples
        BASELINE SUMMARY_COLUMNS TABLE_COLUMNS SeededSGDClassifier plot_tcav summarize_tcav tcav_scores""",
    "nas": """NEURON_TYPES TAXONOMY_DEFAULTS LayerSummary assign_ranges classify_units load_summary range_class_counts
        range_edges sample_per_class save_summary summarize_layer unit_activations width_classes
        BAR_WIDTHS class_colors plot_layer_summary plot_neuron plot_taxonomy_counts select_neurons
        write_layer_summary_html""",
    "neurflow": """METHODS PATCH_SCALES BlockChain adaptive_importance class_patches core_neurons importance
        integrated_gradients make_patches spatial_mean top_k_patches
        CIRCUIT_DEFAULTS CircuitResult build_circuit concept_means masking_effect
        NeuronGroup SemanticGroup best_ward_clusters debugging_metric edge_weights group_edges neuron_groups
        rank_patches semantic_groups
        CIRCUIT_ANSWER_FORM CIRCUIT_INSTRUCTIONS CIRCUIT_PROMPT GROUP_ANSWER_FORM GROUP_INSTRUCTIONS GROUP_PROMPT
        PROMPT_ROLE plot_circuit validate_circuit write_circuit_html write_labelling_export""",
}


@pytest.mark.parametrize("paper", PAPERS)
def test_old_public_names_are_importable_from_the_package(paper):
    package = importlib.import_module(f"conceptscope.{paper}")
    for name in OLD_PUBLIC[paper].split():
        assert name in package.__all__, name
        exec(f"from conceptscope.{paper} import {name}", {})
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


@pytest.mark.parametrize("paper", PAPERS)
def test_the_package_gives_exactly_its_modules_public_names(paper):
    package = importlib.import_module(f"conceptscope.{paper}")
    union = set()
    for module in package._MODULES:
        public = importlib.import_module(f"conceptscope.{paper}.{module}").__all__
        for name in public:  # the first module that exports a name is where the package takes it from
            first = next(
                m for m in package._MODULES if name in importlib.import_module(f"{package.__name__}.{m}").__all__
            )
            assert getattr(package, name) is getattr(importlib.import_module(f"{package.__name__}.{first}"), name)
        union |= set(public)
    assert sorted(union) == package.__all__ and set(package.__all__) <= set(dir(package))


def test_neurflow_importance_is_the_function_and_submodules_stay_reachable():
    from conceptscope import neurflow as nf
    from conceptscope.nmf import jobs

    assert callable(nf.importance) and callable(jobs.fit_coupled_nmf)


@pytest.mark.parametrize("paper", PAPERS)
def test_no_module_of_a_paper_imports_another_paper(paper):
    others = "|".join(p for p in PAPERS if p != paper)
    pattern = re.compile(rf"^\s*(from|import)\s+(conceptscope\.|\.\.)({others})\b", re.M)
    offenders = [p.name for p in (SRC / paper).glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("paper", [*PAPERS, "atlas"])
def test_reading_a_papers_settings_loads_no_plotting_or_learning_library(paper):
    code = (
        f"import sys; from conceptscope.workflow import section_settings; section_settings({paper!r})(); "
        "print(sorted(m for m in ('matplotlib', 'captum', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _code_strings(tree: ast.AST) -> list[str]:
    """String literals of a module that are not docstrings."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


MARKUP = re.compile(
    r"</(html|head|body|style|script|div|span|table|section|main)>|<!DOCTYPE|\bfunction\s*\(|=>\s*\{", re.I
)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small_and_hold_no_page_markup_in_strings(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 700
    assert [s for s in _code_strings(ast.parse(text)) if MARKUP.search(s)] == []
