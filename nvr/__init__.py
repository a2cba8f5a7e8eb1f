"""nvr: an ONVIF Profile G network video recorder daemon."""

__version__ = "0.1.0"
