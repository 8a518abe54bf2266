"""What the two Ray engines share: a Tune experiment's state files checked before a restore."""

import json
import pickle

from scalarize.engines.ray_tune import torn_state


def test_a_state_file_cut_short_is_named_and_the_newest_of_each_is_read(tmp_path):
    assert torn_state(tmp_path) is None  # nothing saved yet
    (tmp_path / "experiment_state-2026-12-07_10-00-00.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "search_gen_state-2026-12-07_10-00-00.json").write_bytes(pickle.dumps({"b": 2}))
    searcher = tmp_path / "searcher-state-2026-12-07_10-00-00.pkl"
    searcher.write_bytes(b"")  # a kill while Tune copied it
    assert torn_state(tmp_path) == searcher.name
    newer = tmp_path / "searcher-state-2026-12-07_10-05-00.pkl"  # a later session's: Tune's pick
    newer.write_bytes(pickle.dumps({"own": {}, "inner": {}}))
    assert torn_state(tmp_path) is None
    cut = tmp_path / "experiment_state-2026-12-07_10-05-00.json"
    cut.write_text(json.dumps({"trial_data": [1, 2, 3]})[:9])
    assert torn_state(tmp_path) == cut.name
