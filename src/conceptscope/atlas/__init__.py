"""The concept atlas: the concepts of every method, side by side, per model and layer.

Modules:

- :mod:`~conceptscope.atlas.concepts`: :class:`Concept`, one method's concept
  (name, model, layer, image set) read from that method's results;
- :mod:`~conceptscope.atlas.alignment`: cross-method alignment, Jaccard overlap
  of image sets, optimal one-to-one matching, summary with a null, heatmaps;
- :mod:`~conceptscope.atlas.recovery`: recovery of planted concepts (data set
  kind ``planted``): best-match precision, recall and F1 per planted concept
  against a permutation null;
- :mod:`~conceptscope.atlas.directions`: concept directions (NAP centroid, NMF
  column, unit axes) and their projection out of a layer's activations;
- :mod:`~conceptscope.atlas.faithfulness`: that projection applied inside the
  model, the class logit's drop against random directions of equal dimension;
- :mod:`~conceptscope.atlas.settings`: the ``atlas`` config section;
- :mod:`~conceptscope.atlas.jobs`: the rules' jobs (catalog, alignment,
  recovery, faithfulness tables);
- :mod:`~conceptscope.atlas.page` and :mod:`~conceptscope.atlas.site`: the
  atlas page ``results/index.html`` and the job that gathers its data.

Import the modules themselves (``from conceptscope.atlas import alignment``);
this package imports none of them.
"""
