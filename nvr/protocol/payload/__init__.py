"""RTP payload formats: depacketizers and packetizers, sans-IO."""
