"""overq hardware: the Amaranth array generator (see docs/hw.md).

``params`` (the shared configuration), ``mul`` / ``pe`` / ``skew`` / ``array`` (the
components), ``netlist`` + ``emit`` + ``dedupe`` (Verilog emission), ``generate`` (the
command and the Python entry points), ``simulate`` (a transaction-level driver for
Amaranth's simulator) and ``bench``.
"""
