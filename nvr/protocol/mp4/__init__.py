"""ISO BMFF (MP4) boxes: writing and reading, sans-IO."""
