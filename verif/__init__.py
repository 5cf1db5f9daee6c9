"""cocotb testbenches of the generated ``top`` under Icarus and Verilator.

``python -m verif.sim`` (``make sim``) runs them; ``docs/verif.md`` describes the
parts (driver, monitor, model, scoreboard, coverage), the tests and the mutants.
"""
