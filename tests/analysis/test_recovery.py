"""Recovery of the planted answer: the noise share of the best-so-far member."""

from scalarize.analysis.recovery import noise_share, recovery_curve
from scalarize.runs.records import DivergedEvent, EpochEvent


def epoch(member: int, n: int, w_noise: float, score: float) -> EpochEvent:
    return EpochEvent(member=member, epoch=n, weights={"a": 1 - w_noise, "n": w_noise},
                      val_acc={"a": score, "n": 0.5}, val_avg_acc=score, seconds=1)


def test_the_curve_follows_the_best_so_far_member_and_counts_each_epoch_once():
    events = [epoch(0, 1, 0.5, 0.6), epoch(1, 1, 0.1, 0.7), epoch(1, 1, 0.1, 0.7),
              epoch(0, 2, 0.9, 0.65), epoch(0, 3, 0.0, 0.8)]
    curve = recovery_curve(events, ["n"])
    assert curve.member_epochs.tolist() == [1, 2, 3, 4]
    assert curve.noise_share.tolist() == [0.5, 0.1, 0.1, 0.0]
    assert curve.best_val_avg_acc.tolist() == [0.6, 0.7, 0.7, 0.8]


def test_diverged_epochs_count_as_the_anytime_curves_count_them():
    events = [epoch(0, 1, 0.5, 0.6), DivergedEvent(member=1, epoch=1, weights={"a": 0.5,
                                                                            "n": 0.5})]
    curve = recovery_curve(events, ["n"])
    assert curve.member_epochs.tolist() == [1, 2]
    assert curve.noise_share.tolist() == [0.5, 0.5]  # the diverged member is never selected
    assert noise_share({"a": 2.0, "n": 2.0}, ["n"]) == 0.5
