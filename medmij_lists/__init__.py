"""medmij_lists."""
