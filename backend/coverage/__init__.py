"""Coverage of the door-knocking campaign: who has been visited, per unit, on a map."""
