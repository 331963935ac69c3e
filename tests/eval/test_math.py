"""pass@k and accuracy helpers against hand-computed values."""

import numpy as np
import pytest

from llm_jax.eval.math import accuracy, accuracy_by, grouped, pass_at_k, pass_at_k_metrics


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 2, 2, 0.7),        # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (4, 1, 3, 0.75),       # 1 - C(3,3)/C(4,3) = 1 - 1/4
    (10, 3, 1, 0.3),       # k = 1 is c / n
    (3, 1, 3, 1.0),        # n - c < k: every draw of 3 holds the correct one
    (10, 0, 5, 0.0),
    (8, 8, 4, 1.0),
    (16, 1, 8, 0.5),       # 1 - C(15,8)/C(16,8) = 1 - 6435/12870
])
def test_pass_at_k_by_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_many_samples():
    # C(97,10)/C(100,10) = (90·89·88)/(100·99·98) = 704880/970200
    assert pass_at_k(100, 3, 10) == pytest.approx(1 - 704880 / 970200, abs=1e-15)
    assert pass_at_k(200, 1, 1) == 0.005


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 2, 5)


def test_metrics_over_groups_of_samples():
    correct = grouped([1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1], group_size=4)
    assert correct.shape == (3, 4)
    metrics = pass_at_k_metrics(correct, ks=(1, 2, 4))
    # per problem c = 2, 0, 4 of n = 4: pass@1 = (1/2 + 0 + 1) / 3;
    # pass@2 = (1 - C(2,2)/C(4,2) = 5/6, 0, 1) / 3; pass@4 = (1 + 0 + 1) / 3
    assert metrics == pytest.approx({"pass@1": 0.5, "pass@2": (5 / 6 + 1) / 3, "pass@4": 2 / 3})
    assert accuracy(correct) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="10 samples do not split into groups of 4"):
        grouped(np.zeros(10), 4)


def test_accuracy_by_group_label():
    assert accuracy_by([1, 0, 1, 1, 0], [1, 1, 2, 2, 3]) == {1: 0.5, 2: 1.0, 3: 0.0}
    with pytest.raises(ValueError, match="3 samples but 2 group labels"):
        accuracy_by([1, 0, 1], ["a", "b"])
