"""Veche users service: accounts, tokens, roles, points, rewards, notifications."""
