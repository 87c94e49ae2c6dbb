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


def test_cost_is_priced_from_the_servers_own_steps_once_it_has_seen_some(
    tmp_path: Path, tiny_weights_file: Path, studio_images: tuple[Path, Path],
) -> None:
    """Before any job, /api/cost prices time with the committed rate; after a job on the same network it
    prices with the median of that job's observed steps (per evaluation, per megapixel)."""
    from impasto.studio.app import Limits

    from .conftest import wait_for

    request = {"size": 64, "start_size": None, "steps": 12, "device": "cpu"}
    with make_client(tmp_path / "data", tiny_weights_file, limits=Limits(max_size=4096, max_job_mib=BUDGET_MIB)) as c:
        before = _cost(c, request).json()
        assert before["rate_source"] == "the committed measurement for this device type"
        r = c.post("/api/jobs", files=job_files(studio_images[0], [studio_images[1]]),
                   data={"config": json.dumps(request)})
        assert r.status_code in (200, 201), r.text
        assert wait_for(c, r.json()["id"])["state"] == "done"
        after = _cost(c, request).json()
        assert after["rate_source"] == "from this server's recent steps of the same network"
        rate = after["seconds_per_step_per_mpixel"]
        assert rate > 0 and rate != pytest.approx(CPU_SECONDS_PER_MPIXEL)
        (row,) = after["scales"]
        assert row["seconds_per_step"] == pytest.approx(rate * row["height"] * row["width"] / 1e6)
        # Another network (one more style layer) has not been seen: the committed rate again.
        other = _cost(c, {**request, "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]}).json()
        assert other["rate_source"] == "the committed measurement for this device type"


def test_rate_meter_takes_the_median_of_whole_steps_within_a_scale() -> None:
    from impasto.tiling.cost import RateMeter

    m, key = RateMeter(), ("cpu", True, ("relu4_2",), ("relu1_1",), "max")
    assert m.rate(key) is None
    # A 1000 x 1000 picture: seconds between consecutive steps are seconds per step per megapixel.
    for step, t in enumerate([0.0, 5.0, 7.0, 10.0, 11.0], start=1):
        m.observe("a", key, 0, step, (1000, 1000), t, 0, 1.0)
    assert m.rate(key) == pytest.approx(2.5)  # 5, 2, 3, 1 -> median 2.5
    m.observe("a", key, 1, 6, (1000, 1000), 30.0, 0, 1.0)  # a new scale's first step: not a sample
    m.observe("a", key, 1, 7, (1000, 1000), 31.0, 4, 1.0)  # tiled: not a sample
    m.observe("a", key, 1, 9, (1000, 1000), 33.0, 0, 1.0)  # a gap (resumed): not a sample
    assert m.rate(key) == pytest.approx(2.5)
    m.observe("b", key, 0, 1, (500, 400), 0.0, 0, 4.0)
    m.observe("b", key, 0, 2, (500, 400), 8.0, 0, 4.0)  # 8 s / 0.2 Mpx / 4 evaluations = 10
    assert m.rate(key) == pytest.approx(3.0)  # 1, 2, 3, 5, 10
    assert m.rate(("cuda", True, ("relu4_2",), ("relu1_1",), "max")) is None
