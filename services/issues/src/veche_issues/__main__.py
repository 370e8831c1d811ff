"""`python -m veche_issues` serves the issues subgraph."""

from veche_issues.app import main

main()
