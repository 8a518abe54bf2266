import subprocess
import sys

import pytest

from scalarize.errors import ScalarizeError
from scalarize.methods import METHODS, build_method, method_uses_weights


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_says_whether_it_uses_the_weights(name):
    answer = method_uses_weights(name)
    assert isinstance(answer, bool)
    assert type(build_method(name, {}, n_objectives=2)).uses_weights is answer


def test_only_static_and_the_methods_taking_a_preference_use_the_weights():
    assert [n for n in METHODS.names() if method_uses_weights(n)] == [
        "cosmos", "pbi", "sdmgrad", "static", "stch"]


def test_asking_builds_nothing_and_imports_no_torchjd():
    code = ("import sys; from scalarize.methods import METHODS, method_uses_weights; "
            "[method_uses_weights(n) for n in METHODS.names()]; "
            "assert 'torchjd' not in sys.modules, 'torchjd imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_method_is_a_clear_error():
    with pytest.raises(ScalarizeError, match="unknown method 'pcgrad2'"):
        method_uses_weights("pcgrad2")


def test_a_method_that_does_not_say_is_taken_to_use_the_weights(monkeypatch):
    monkeypatch.setitem(METHODS._factories, "mine", lambda n_objectives, **options: None)
    assert method_uses_weights("mine") is True
