"""犯罪记录封存: records of a person who was a minor at the time, sealed (seed 002, README "Sealed records")."""
