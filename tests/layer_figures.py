"""Measured SQNR (dB) of the digits conv2 layer against FP32, on one test image.

The network is the shipped one (``sw_ref/nets/digits_cnn.npz``), so these figures do not
depend on the machine that runs the tests: the RTL outputs are bit-exact to the reference,
and the reference's only float steps (the conv1 forward, the step search, the FP32 conv2)
gave the same value to 1e-4 dB under ATEN_CPU_CAPABILITY = default, avx2, avx512 and
OMP_NUM_THREADS = 1, 2 (`make test-portability`). The tolerance leaves room for another
CPU's float rounding and is far below what a broken path costs: clipping every outlier
instead of OverQ-encoding it loses 0.04 dB (int, range) and 0.13-0.14 dB (APoT,
range+precision), a doubled error 3 dB.
"""

LAYER_SQNR_DB = {
    "r8c8_a4w4int_oq-range_c2_acc15": 21.327,
    "r8c8_a4w4apot_k2_oq-range+precision_c3_acc20": 19.925,
    "r5c3_a4w4apot_k2_oq-range+precision_c3_acc19": 19.912,
    # with the hardware encoder: codes of the same activations, K zero-padded to tiles
    "r8c8_a4w4int_oq-range_c2_acc15_enc": 21.327,
    "r8c8_a4w4int_oq-range+precision_c3_acc19_enc": 21.402,
}
SQNR_TOLERANCE_DB = 0.02
