"""Study scripts behind the counterexample findings (``python -m counterexamples.<study>``)."""
