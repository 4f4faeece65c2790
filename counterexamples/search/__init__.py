"""A seeded search for a robust failure of PowerSGD; see search.py."""
