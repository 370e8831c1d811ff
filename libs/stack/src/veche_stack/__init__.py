"""Runs the whole Veche stack on one machine (`make run`, and the stack tests)."""
