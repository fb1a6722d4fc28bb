"""Audio processing: loudness and peak meters, a true-peak limiter, channel/rate conversion and
normalization, and the mastering stage that combines them."""
