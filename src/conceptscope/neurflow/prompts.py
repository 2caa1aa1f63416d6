"""Prompts of the NeurFlow concept-labelling export (one per neuron group, one per connected pair of groups).

A neuron group of a NeurFlow circuit (Cao et al., ICLR 2025) is described by
its top patches; the export hands them to a multimodal model with these
prompts to name the shared visual concept (no model is called here). The prompt
texts are prose files under ``static/`` (``prompt_*.txt``); each prompt has
three parts, the role, the instructions and the answer form, and ``str.format``
fields the export fills (:func:`conceptscope.neurflow.write_labelling_export`):
``{n_images}``, ``{node}``, ``{layer}`` for a group; ``{upper}``, ``{lower}``,
``{upper_layer}``, ``{lower_layer}``, ``{n_upper}``, ``{n_lower}``,
``{weight}`` for a pair.
"""

from __future__ import annotations

from ..pages import read_static

__all__ = [
    "CIRCUIT_ANSWER_FORM",
    "CIRCUIT_INSTRUCTIONS",
    "CIRCUIT_PROMPT",
    "GROUP_ANSWER_FORM",
    "GROUP_INSTRUCTIONS",
    "GROUP_PROMPT",
    "PROMPT_ROLE",
]


def _text(name: str) -> str:
    return read_static("conceptscope.neurflow", f"prompt_{name}.txt").rstrip("\n")


PROMPT_ROLE = _text("role")
GROUP_INSTRUCTIONS = _text("group_instructions")
GROUP_ANSWER_FORM = _text("group_answer_form")
CIRCUIT_INSTRUCTIONS = _text("circuit_instructions")
CIRCUIT_ANSWER_FORM = _text("circuit_answer_form")

GROUP_PROMPT = "\n\n".join([PROMPT_ROLE, GROUP_INSTRUCTIONS, GROUP_ANSWER_FORM]) + "\n"
CIRCUIT_PROMPT = "\n\n".join([PROMPT_ROLE, CIRCUIT_INSTRUCTIONS, CIRCUIT_ANSWER_FORM]) + "\n"
