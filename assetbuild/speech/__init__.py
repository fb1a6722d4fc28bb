"""Text-side speech helpers shared by every speech backend: what is said, and when each word is."""
