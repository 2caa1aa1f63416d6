"""conceptscope: activation-based concept discovery, reproduced as one cached workflow."""

__version__ = "0.1.0"
