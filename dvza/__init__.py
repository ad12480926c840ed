"""dvza."""
