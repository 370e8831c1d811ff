# Test packages are named services.users.tests; the code lives in src/.
