"""Veche's shared library: the small, boring parts every service needs."""
