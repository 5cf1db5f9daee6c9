"""The cycle model of ``verif.utilisation`` and the real layers it is applied to.

The model is checked against measurement in simulation by the layer cases of
``tests/test_verif_sim.py`` (cycles of ``test_layer`` == ``cycles_used``); here, its
formulas on shapes worked out by hand, and the layers' shapes against their sources.
"""

from hw.params import ArrayConfig
from verif.utilisation import cycles_used, ideal_cycles, layer_shapes, utilisation


def test_single_copy_pays_load_and_drain_for_every_tile():
    cfg = ArrayConfig()  # R = C = 8, L = 15
    assert cycles_used(cfg, 64, 72, double_buffer=False) == 72 * (8 + 64 + 15)
    assert ideal_cycles(cfg, 64, 72) == 64 * 72 + 8 + 15


def test_double_buffer_reaches_the_ideal_when_tiles_are_at_least_r_long():
    cfg = ArrayConfig(double_buffer=True)
    assert cycles_used(cfg, 64, 72) == ideal_cycles(cfg, 64, 72)
    assert utilisation(cfg, 8, 5) == 1.0
    # shorter tiles wait for the next tile's R shifts
    assert cycles_used(cfg, 3, 5) == 8 + 4 * 8 + 3 + 15
    assert utilisation(cfg, 3, 5) < 1.0


def test_operand_registers_count_in_the_fill():
    cfg = ArrayConfig(input_register=True)
    assert ideal_cycles(cfg, 10, 2) == 20 + 8 + 16


def test_layer_shapes_come_from_the_models():
    digits, effnet = layer_shapes()
    assert (digits.vectors, digits.k, digits.o) == (64, 16 * 9, 32)
    assert digits.tiles(ArrayConfig()) == 72  # the 72 tiles of the issue
    assert (effnet.vectors, effnet.k, effnet.o) == (14 * 14, 480, 80)
    assert effnet.tiles(ArrayConfig()) == 60 * 10
