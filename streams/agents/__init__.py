"""One Faust agent per module."""
