"""Veche's federation gateway: composes Federation v2 subgraphs and serves one GraphQL API."""

from veche_gateway.app import create_app
from veche_gateway.gateway import Gateway
from veche_gateway.settings import Settings

__all__ = ["Gateway", "Settings", "create_app"]
