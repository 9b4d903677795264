"""Client for a speech-to-text service."""
