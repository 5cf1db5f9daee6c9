"""Area and logic-depth flow for the overq PEs and arrays (Yosys + a 45 nm cell library).

``flow`` synthesizes one Verilog design against ``cells45.lib`` (``liberty``),
``designs`` and ``plan`` say which designs a report needs, ``batch`` runs them two at a
time, ``report`` turns results into data, ``markdown``/``plot`` format it, ``minimum``
prices the OverQ additions in library cells, and ``python -m synth.area``
(``make synth``) ties them together. ``fpga*`` is the separate ECP5 flow.
"""
