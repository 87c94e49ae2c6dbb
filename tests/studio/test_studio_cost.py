"""What a job will cost, before it starts: ``POST /api/cost`` and the job-memory guard, both on the
engine's memory model (impasto.tiling.memory) under the server's per-job budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from impasto.config import Config
from impasto.tiling.cost import CPU_SECONDS_PER_MPIXEL
from impasto.tiling.grid import alignment, required_halo
from impasto.tiling.memory import RUNTIME_BYTES, estimate_tiled, pair_bytes, plan_scale
from impasto.units import format_bytes
from impasto.vgg import VGGFeatures, canonical_layer, load_weights

from .conftest import job_files
from .test_studio_api import make_client

BUDGET_MIB = 1000.0
BUDGET = int(BUDGET_MIB * 2**20)
CONTENT_HW, STYLE_HW = (48, 64), (64, 64)
"""studio_images: a 64x48 photo and a 64x64 painting."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path) -> Iterator[Any]:
    from impasto.studio.app import Limits

    with make_client(tmp_path_factory.mktemp("cost") / "data", tiny_weights_file, pool={"prestart": False},
                     limits=Limits(max_size=4096, max_job_mib=BUDGET_MIB)) as c:
        yield c


def expected_plans(weights_file: Path, cfg: Config) -> list[Any]:
    """plan_scale of every scale with the real (tiny) network, the per-job budget and the process's
    fixed part as the engine counts it on the CPU (runtime, the content twice and the style as float32)."""
    weights = load_weights(weights_file)
    cl = [canonical_layer(x) for x in cfg.content_layers]
    sl = [canonical_layer(x) for x in cfg.style_layers]
    model = VGGFeatures(weights, cl + sl, cfg.pooling)
    overhead = RUNTIME_BYTES["cpu"] + 3 * 4 * (2 * 48 * 64 + 64 * 64)
    return [plan_scale(model, cl, sl, h, w, BUDGET, cfg.history_for(h, w), overhead)
            for (h, w), _ in cfg.schedule(*CONTENT_HW)]


def _cost(client: Any, config: dict[str, Any], **form: Any) -> Any:
    data = {"config": json.dumps(config), "content_size": "64x48", "style_size": ["64x64"], **form}
    return client.post("/api/cost", data=data)


def test_cost_rows_are_the_memory_models_plans(client: Any, tiny_weights_file: Path,
                                               studio_images: tuple[Path, Path]) -> None:
    request = {"size": 2048, "steps": 2, "device": "cpu"}
    r = _cost(client, request)
    assert r.status_code == 200, r.text
    got = r.json()
    cfg = Config(size=2048, steps=2, device="cpu")
    plans = expected_plans(tiny_weights_file, cfg)
    assert len(got["scales"]) == len(plans) >= 3
    for row, plan, ((h, w), steps) in zip(got["scales"], plans, cfg.schedule(*CONTENT_HW), strict=True):
        assert (row["height"], row["width"], row["steps"]) == (h, w, steps)
        assert row["run_bytes"] == plan.peak and row["whole_bytes"] == plan.whole.total + plan.overhead
        assert row["pairs"] == plan.pairs and row["tile"] == plan.tile and (row["tiles"] > 0) == plan.tiled
        if not plan.tiled:
            assert row["seconds_per_step"] == pytest.approx(CPU_SECONDS_PER_MPIXEL * h * w / 1e6)
    # The coarse scales run whole; 2048 px is over the budget whole and runs in tiles within it.
    assert not plans[0].tiled and plans[-1].tiled and plans[-1].whole.total + plans[-1].overhead > BUDGET
    assert got["scales"][-1]["run_bytes"] <= BUDGET
    assert got["budget_bytes"] == BUDGET and got["max_memory"] == "1000MiB" and got["device"] == "cpu"
    assert got["rate_source"] == "the committed measurement for this device type"  # the web process times nothing
    assert got["peak_bytes"] == max(p.peak for p in plans)
    assert got["seconds"] == pytest.approx(sum(r["seconds"] for r in got["scales"]))
    assert got["total_steps"] == sum(n for _, n in cfg.schedule(*CONTENT_HW))
    assert got["lines"][0].split() == ["scale", "steps", "whole", "as", "run", "tiles", "pairs", "s/step"]
    # The images themselves, as a job posts them, give the same answer.
    up = client.post("/api/cost", files=job_files(studio_images[0], [studio_images[1]]),
                     data={"config": json.dumps(request)})
    assert up.status_code == 200 and up.json() == got


def test_a_size_over_the_whole_image_budget_is_queued_to_run_in_tiles(client: Any,
                                                                      studio_images: tuple[Path, Path]) -> None:
    config = {"size": 2048, "start_size": None, "steps": 1, "device": "cpu"}
    assert _cost(client, config).json()["scales"][0]["tiles"] > 0
    r = client.post("/api/jobs", files=job_files(studio_images[0], [studio_images[1]]),
                    data={"config": json.dumps(config)})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["config"]["size"] == 2048 and job["config"]["max_memory"] == "1000MiB"
    client.post(f"/api/jobs/{job['id']}/cancel")  # accepted is the point; running it is the engine's tests'
    # A smaller max_memory of the request's own is kept; auto, none and a larger one become the budget.
    for asked, kept in (("900MiB", "900MiB"), ("auto", "1000MiB"), (None, "1000MiB"), ("64GiB", "1000MiB")):
        got = _cost(client, {**config, "size": 1024, "max_memory": asked})
        assert got.status_code == 200 and got.json()["max_memory"] == kept, (asked, got.text)


def test_a_size_whose_floor_is_over_the_budget_is_refused_in_one_line(client: Any, tiny_weights_file: Path,
                                                                      studio_images: tuple[Path, Path]) -> None:
    config = {"size": 4096, "start_size": None, "steps": 1, "device": "cpu"}
    before = len(client.get("/api/jobs").json())
    r = client.post("/api/jobs", files=job_files(studio_images[0], [studio_images[1]]),
                    data={"config": json.dumps(config)})
    assert r.status_code == 400
    detail = r.json()["detail"]
    # The floor as plan_scale counts it: runtime and inputs, pixel vectors, targets, one pair, the smallest tile.
    cfg = Config(**config)
    cl = [canonical_layer(x) for x in cfg.content_layers]
    sl = [canonical_layer(x) for x in cfg.style_layers]
    model = VGGFeatures(load_weights(tiny_weights_file), cl + sl, cfg.pooling)
    h, w = cfg.schedule(*CONTENT_HW)[-1][0]
    floor = (estimate_tiled(model, cl, sl, h, w, 0, alignment(model),
                            required_halo(model)).total + pair_bytes(h, w)
             + RUNTIME_BYTES["cpu"] + 3 * 4 * (2 * 48 * 64 + 64 * 64))
    assert (h, w) == (3072, 4096) and floor > BUDGET
    assert detail == (f"a 4096x3072 picture needs at least {format_bytes(floor)} of memory even in tiles (runtime "
                      "and input images, pixels, optimiser vectors, content targets, one L-BFGS pair, the smallest "
                      "tile), over this server's budget of 1000.0 MiB per job (--max-job-memory); ask for a "
                      "smaller size")
    assert len(client.get("/api/jobs").json()) == before
    assert _cost(client, config).json()["detail"] == detail
    # A request's own smaller max_memory gets the engine's line (it may raise its own budget).
    own = _cost(client, {**config, "max_memory": "900MiB"}).json()["detail"]
    assert own.startswith("max_memory 900.0 MiB is below the ") and own.endswith("raise max_memory or lower the size")


@pytest.mark.parametrize(("form", "message"), [
    ({"content_size": "64by48"}, "an image size is WIDTHxHEIGHT in pixels"),
    ({"content_size": "0x48"}, "an image size is WIDTHxHEIGHT in pixels"),
    ({"content_size": "100000x100000"}, "over this server's limit of 50,000,000 pixels"),
    ({"content_size": None}, "give content_size (WIDTHxHEIGHT) and style_size, or the content and style images"),
    ({"style_size": []}, "at least one style image"),
])
def test_bad_cost_requests_are_one_line_400s(client: Any, form: dict[str, Any], message: str) -> None:
    data = {"config": json.dumps({"size": 256}), "content_size": "64x48", "style_size": ["64x64"], **form}
    r = client.post("/api/cost", data={k: v for k, v in data.items() if v is not None})
    assert r.status_code == 400 and message in r.json()["detail"] and "\n" not in r.json()["detail"], r.text


def test_the_cost_checks_what_a_job_post_checks(client: Any) -> None:
    r = _cost(client, {"size": 8192})
    assert r.status_code == 400 and r.json()["detail"] == "size must be at most 4096 on this server (got 8192)"
    r = _cost(client, {"size": 256, "lbfgs_max_iter": 21})
    assert r.status_code == 400 and "inner iterations per step" in r.json()["detail"]
