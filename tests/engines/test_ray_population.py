"""The Ray Tune engine: same store as the local engine, and a real two-node cluster on loopback.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

import subprocess
import sys

import pytest

from scalarize.analysis.search import population_frame
from scalarize.runs import SearchDir, SearchSummary
from scalarize.search.spec import load_search_config
from scalarize.studies.replay import replay
from scalarize.studies.runner import run_search
from tests.engines.cluster import loopback_cluster


def _events(folder):
    """``population.jsonl`` without what differs between engines by nature (time, node)."""
    lines = [e.dump() for e in SearchDir(folder).read_events()]
    return [{k: v for k, v in line.items() if k not in ("seconds", "node")} for line in lines]


def _same_search(local: SearchSummary, ray: SearchSummary) -> None:
    """Everything but the engine's name and the times."""
    skip = {"engine", "seconds", "train_seconds", "members"}
    assert ray.model_dump(exclude=skip) == local.model_dump(exclude=skip)
    for a, b in zip(local.members, ray.members, strict=True):
        assert a.model_dump(exclude={"train_seconds"}) == b.model_dump(exclude={"train_seconds"})


@pytest.mark.parametrize("strategy,overrides", [
    ("pbt", []), ("pb2", []), ("mopbt", []),
    # 6 members at a learning rate where some diverge (frozen, then replaced, or diverged at
    # the end: on this CPU at least; the equality holds either way)
    ("pbt", ["train.lr=135", "search.population=6"]),
], ids=["pbt", "pb2", "mopbt", "pbt-diverging"])
def test_ray_engine_decides_and_trains_exactly_as_the_local_engine(ray_search_file, tmp_path,
                                                                  local_ray, strategy,
                                                                  overrides):
    """The same config and seed on both engines: the same population.jsonl (every epoch's
    weights and held-out scores, every exploit with its parent and explored weights) and the
    same summary, to the last bit. It holds because Ray only transports: each trial runs the
    shared member runner (its own torch RNG state, restored with its checkpoint, weights never
    normalised twice), and the decisions are the shared policy's, fed the members' scores in
    member order whatever order Ray's results come in. One torch thread per member on both, so
    that the float reductions are the same; pb2 runs its Gaussian process from the second
    decision on (with three or more observations), mopbt ranks by Pareto front."""
    config = load_search_config(ray_search_file, [f"search.strategy={strategy}", *overrides])
    local = run_search(config, tmp_path / "local", progress=False)
    ray = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert ray.engine == "ray" and ray.member_epochs == 4 * config.search.population
    assert _events(tmp_path / "ray") == _events(tmp_path / "local")
    assert any(e["event"] == "exploit" for e in _events(tmp_path / "ray"))
    _same_search(local, ray)
    assert population_frame(tmp_path / "ray").node.notna().all()


def test_a_finished_ray_search_is_not_run_again_and_replays(ray_search_file, tmp_path, local_ray):
    config = load_search_config(ray_search_file, ["search.strategy=random", "train.epochs=2"])
    first = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert all(len(m.schedule) == 1 for m in first.members)
    again = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert again.seconds == first.seconds
    replayed = replay(tmp_path / "ray", "best", progress=False)
    assert replayed.run == f"replay-m{first.best_member:02d}"


def test_pbt_on_a_two_node_cluster_through_address(ray_search_file, tmp_path):
    with loopback_cluster(tmp_path) as cluster:
        result = subprocess.run(
            [sys.executable, "-m", "scalarize.cli", "search", str(ray_search_file), "--engine",
             "ray", "--address", cluster.address, "--out", str(tmp_path / "cluster"), "--quiet",
             "--cpus-per-run", "2"],  # a whole node per member: at most two at once
            capture_output=True, text=True, timeout=300, env=cluster.env)
        assert result.returncode == 0, result.stderr[-2000:]
    frame = population_frame(tmp_path / "cluster")
    # on the cluster's nodes; which of them is Ray Tune's choice (on a loaded machine, a
    # member can finish its epoch before the other node's worker has started, and Tune gives
    # its free worker to the next member): tests/engines/test_ray_user_code.py holds its
    # members at a barrier until both nodes have one
    assert set(frame.node) <= set(cluster.nodes), (set(frame.node), cluster.nodes)
    assert sorted(frame.groupby("member").epoch.max()) == [4, 4, 4, 4]
    # the in-process engine's decisions and numbers: a member paused without its checkpoint
    # of a decision (trained an epoch again, its copies an epoch behind) would differ
    run_search(load_search_config(ray_search_file), tmp_path / "local", progress=False)
    assert _events(tmp_path / "cluster") == _events(tmp_path / "local")
