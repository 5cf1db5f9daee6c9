"""The netlist after synthesis: does the mapped netlist the area report prices still
compute what the RTL does?

``mapped`` re-runs the area flow with ``write_verilog`` appended and checks the run
priced the same netlist; ``equiv`` proves a netlist equal to its RTL in Yosys (a miter
and ``sat -tempinduct``); ``cells`` writes Verilog models of the liberty cells from their
function strings; ``gatesim`` runs the cocotb testbench on a whole array's netlist;
``check`` is what ``make synth`` calls.
"""
