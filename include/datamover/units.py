"""Byte units shared by the transfer engines."""

MIB = 1024 * 1024
