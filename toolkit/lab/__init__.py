"""The gradient-flow lab: gradient diagnostics through time, long-range
memory tasks and the lab report."""
