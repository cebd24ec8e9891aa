"""The music extractor: audio to Essentia "music 2.0" records."""
