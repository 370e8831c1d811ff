# Test packages are named services.issues.tests; the code lives in src/.
