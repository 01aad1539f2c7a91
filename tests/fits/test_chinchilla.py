"""The corpus's Chinchilla family (Hoffmann et al. 2022) fitted descriptively lands in the published range."""
from fits.method import CURVES
from fits.policy import POLICIES


def test_chinchilla_family_gives_published_E_and_alpha(family):
    # A descriptive fit of all sizes: size weights are an extrapolation choice, not part of describing the data.
    result = CURVES.with_params(policy=POLICIES["no-size-weights"]).fit(family("chinchilla")).result
    assert result.success, result.message
    assert 1.6 <= result.params["E"] <= 1.9
    assert 0.3 <= result.params["alpha"] <= 0.4
