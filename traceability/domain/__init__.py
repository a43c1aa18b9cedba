"""Pure data and rules of the supply chain: no I/O, nothing of ours imported from other layers."""
