"""Privacy transforms on video frames (blur, face mask, avatar, placeholder)."""
