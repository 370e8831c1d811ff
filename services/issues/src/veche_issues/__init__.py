"""Veche issues service: problems, initiatives, workflow, deadlines, solvers, search."""
