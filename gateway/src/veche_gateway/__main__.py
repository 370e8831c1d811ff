"""`python -m veche_gateway`: serve the gateway with Uvicorn on HOST:PORT."""

from __future__ import annotations

import logging

import uvicorn

from veche_gateway.app import create_app
from veche_gateway.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
