""""2112" online incidents about women and children: timed hand-offs down the chain (issue 6)."""
