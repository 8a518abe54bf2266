"""A tiny search config shared by the search tests: 4 members of a 1-block ViT on 160 images."""

import pytest
import yaml

SEARCH = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count]
  options: {n_train: 160, n_val: 16, n_test: 48, image_size: 16}
model: {spec: vit-d1-w16-p8}
train: {epochs: 4, batch_size: 32, device: cpu, lr: 3.0e-3}
search: {strategy: pbt, population: 4, interval: 1, quantile: 0.25}
"""


def search_yaml(**train: object) -> str:
    """:data:`SEARCH` with ``train`` fields changed."""
    tree = yaml.safe_load(SEARCH)
    tree["train"].update(train)
    return yaml.safe_dump(tree, sort_keys=False)


@pytest.fixture()
def search_file(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    return path


@pytest.fixture()
def ray_search_file(tmp_path):
    """The shared tiny search, one torch thread per member (Ray runs members side by side)."""
    path = tmp_path / "search.yaml"
    path.write_text(search_yaml(threads=1))
    return path


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the end-to-end tests of a module (each search would otherwise start
    and stop its own)."""
    import ray

    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             configure_logging=False, num_cpus=2)
    yield
    ray.shutdown()
