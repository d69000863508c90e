"""The pack's version, written into every identity file so a file can be traced to the code that made it."""

PACK_VERSION = "0.2.0"
