"""The built-in simulated camera of ``nvr serve --demo``: H.264 with a visible clock, G.711
audio and ONVIF metadata, generated in-process so a first start records something at once."""
