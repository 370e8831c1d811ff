"""`python -m veche_users` serves the users subgraph."""

from veche_users.app import main

main()
