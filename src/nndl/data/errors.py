"""Errors of the data layer; each message names the file or folder concerned."""

import errno


class DataError(ValueError):
    """A data file or folder is missing, damaged or not what was expected."""


class UnsafePickleError(DataError):
    """A pickle asked for something beyond the plain NumPy arrays CIFAR-10 holds."""


class ChecksumError(DataError):
    """A file's checksum is not the expected one."""


class DataNotFoundError(DataError, FileNotFoundError):
    """No data where it was looked for, and it could not be downloaded."""


def disk_full(exc: OSError) -> bool:
    """Whether ``exc`` says the disk (or the user's quota on it) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
