"""Usage logs: per-runtime readers, pricing and cost rollups."""
