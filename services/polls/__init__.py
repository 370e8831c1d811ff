# Test packages are named services.polls.tests; the code lives in src/.
