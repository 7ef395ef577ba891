"""Header layouts (offsets, numpy views, struct layouts) and small pure helpers per protocol."""
