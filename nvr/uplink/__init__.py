"""Cloud uplink (IEC 62676-2-33 clause 8, ONVIF Uplink): the device dials out and serves
its ONVIF services and RTSP through reversed-role HTTP/2."""
