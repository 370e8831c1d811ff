"""`python -m veche_polls` serves the polls subgraph."""

from veche_polls.app import main

main()
