"""Veche polls service: city polls, one final ballot per user, results kept as counters."""
