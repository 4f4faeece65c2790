import os

from hypothesis import HealthCheck, settings

# "ci" is fast enough for 2 cores; run `HYPOTHESIS_PROFILE=deep pytest` for a thorough search.
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
