"""The `keel` command line: a driving adapter over the local stack, the app and the workers."""
