"""Accuracy against area: every configuration of a grid, evaluated and priced.

``python -m synth.explore`` (``make explore``). ``grid`` names the points, ``nets``
the networks, ``accuracy`` evaluates one point with the evaluation's quantizers,
``cost`` prices an array from separately synthesized parts, ``front`` finds the
Pareto front, ``run`` schedules and caches the work and ``report`` writes it.
"""
