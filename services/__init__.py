# Makes each service's tests a uniquely named package (services.<name>.tests).
