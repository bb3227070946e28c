"""Dunning's log-likelihood ratio against published 2×2 tables and an independent G-test."""

from __future__ import annotations

import math

import pytest
from scipy.stats import chi2_contingency

from stream.engine import association_metrics, log_likelihood_ratio

# Apache Mahout's LogLikelihoodTest (org.apache.mahout.math.stats), values to its tolerance.
MAHOUT_TABLES = [
    ((1, 0, 0, 1), 2.772589),
    ((10, 0, 0, 10), 27.72589),
    ((5, 1995, 0, 100000), 39.33052),
    ((1000, 1995, 1000, 100000), 4730.737),
    ((1000, 1000, 1000, 100000), 5734.343),
    ((1000, 1000, 1000, 99000), 5714.932),
]


@pytest.mark.parametrize(("table", "expected"), MAHOUT_TABLES)
def test_llr_matches_published_tables(table, expected):
    assert float(log_likelihood_ratio(*table)) == pytest.approx(expected, rel=1e-6)


def test_llr_by_hand_and_by_scipy_g_test():
    k11, k12, k21, k22 = 110, 2442, 111, 29114  # a bigram-style table in the manner of Dunning (1993)
    n = k11 + k12 + k21 + k22
    rows, cols = (k11 + k12, k21 + k22), (k11 + k21, k12 + k22)
    by_hand = 2 * sum(
        k * math.log(k * n / (rows[i] * cols[j]))
        for (i, j), k in {(0, 0): k11, (0, 1): k12, (1, 0): k21, (1, 1): k22}.items()
    )
    g, *_ = chi2_contingency([[k11, k12], [k21, k22]], correction=False, lambda_="log-likelihood")
    assert float(log_likelihood_ratio(k11, k12, k21, k22)) == pytest.approx(by_hand, rel=1e-9)
    assert by_hand == pytest.approx(g, rel=1e-9)


def test_metrics_from_counts_build_the_same_table():
    metrics = association_metrics([110], [110 + 2442], [110 + 111], 110 + 2442 + 111 + 29114)
    assert float(metrics["llr"][0]) == pytest.approx(float(log_likelihood_ratio(110, 2442, 111, 29114)))
    assert float(metrics["lift"][0]) == pytest.approx(110 * 31777 / (2552 * 221))
