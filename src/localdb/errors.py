"""The one error the local database tooling raises: its message is a single line a person can act on."""


class LocalDbError(Exception):
    pass
