"""Artist controls end to end: engine behaviour with the real (bundled) VGG19 on tiny images, and the
command line (every new flag's bad value exits 2 with one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from impasto import cli
from impasto.config import Config
from impasto.engine import StyleTransfer, stylize
from impasto.errors import ImpastoError
from impasto.io.images import load_image, to_pil
from impasto.jobs import expand_styles
from impasto.losses.color import color_stats, rgb_to_yiq

pytestmark = pytest.mark.slow  # every test here runs the real VGG19

LAYERS = {"content_layers": ("relu2_1",), "style_layers": ("relu1_1", "relu2_1")}


def _tiny(seed: int, h: int = 32, w: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, h // 8, w // 8, generator=g)
    img = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (img + 0.05 * torch.rand(3, h, w, generator=g)).clamp(0, 1)


def _cfg(**kw: object) -> Config:
    base: dict[str, object] = {"size": 40, "start_size": None, "steps": 3, **LAYERS}
    base.update(kw)
    return Config(**base)  # type: ignore[arg-type]


def _last(st: StyleTransfer, image_every: int = 0) -> list:  # type: ignore[type-arg]
    return list(st.run(image_every))


def test_luminance_mode_keeps_content_chroma() -> None:
    content = 0.3 + 0.4 * _tiny(1)  # mid-range colours: no gamut clipping when chroma is put back
    out = stylize(content, [_tiny(2)], _cfg(preserve_color="luminance"))
    iq_out, iq_content = rgb_to_yiq(out)[1:], rgb_to_yiq(content)[1:]
    inside = ((out > 0.001) & (out < 0.999)).all(dim=0)
    assert inside.float().mean() > 0.9
    assert torch.allclose(iq_out[:, inside], iq_content[:, inside], atol=1e-4)


def test_luminance_mode_optimises_grey_inputs() -> None:
    st = StyleTransfer(_tiny(1), [_tiny(2)], _cfg(preserve_color="luminance", steps=0))
    assert torch.equal(st.inputs.content[0], st.inputs.content[1])
    assert torch.equal(st.inputs.styles[0][0], st.inputs.styles[0][2])


def test_match_mode_recolours_the_style_to_the_content() -> None:
    content, style = _tiny(3), _tiny(4) ** 3
    st = StyleTransfer(content, [style], _cfg(preserve_color="match", steps=0))
    mu_s, _ = color_stats(st.inputs.styles[0])
    mu_c, _ = color_stats(content)
    assert torch.allclose(mu_s, mu_c, atol=0.02)  # clamping to [0, 1] moves it slightly


def test_color_match_output_has_content_statistics() -> None:
    content = 0.2 + 0.6 * _tiny(5)
    style = torch.stack([_tiny(6)[0], 0.1 * _tiny(6)[1], 0.1 * _tiny(6)[2]])  # a red painting
    out = stylize(content, [style], _cfg(color_match_output=True, steps=5))
    mu_o, cov_o = color_stats(out)
    mu_c, cov_c = color_stats(content)
    assert torch.allclose(mu_o, mu_c, atol=0.01)
    assert torch.allclose(cov_o, cov_c, atol=0.005)


def test_blend_weight_one_zero_equals_single_style() -> None:
    a = stylize(_tiny(7), [_tiny(8)], _cfg())
    b = stylize(_tiny(7), [_tiny(8), _tiny(9)], _cfg(style_blend_weights=(1.0, 0.0)))
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("kind", ["w2", "hist"])
def test_other_style_kinds_lower_the_style_loss(kind: str) -> None:
    st = StyleTransfer(_tiny(10), [_tiny(11)], _cfg(style_kind=kind, steps=8, content_weight=0.0))
    evs = _last(st)
    assert evs[-1].style < 0.5 * evs[0].style


def test_mask_regions_get_different_styles() -> None:
    red = torch.zeros(3, 32, 32)
    red[0] = 0.5 + 0.5 * _tiny(12, 32, 32)[0]
    blue = torch.zeros(3, 32, 32)
    blue[2] = 0.5 + 0.5 * _tiny(13, 32, 32)[2]
    mask = torch.zeros(3, 32, 40)
    mask[0, :, :20] = 1.0
    mask[2, :, 20:] = 1.0
    grey = torch.full((3, 32, 40), 0.5)
    cfg = _cfg(steps=30, content_weight=0.0, mask="MASK", regions=("red=1", "blue=2"))
    st = _with_mask(grey, [red, blue], cfg, mask)
    out = _last(st)[-1].image
    left, right = out[:, :, :16], out[:, :, 24:]
    assert left[0].mean() - left[2].mean() > 0.1  # left is red
    assert right[2].mean() - right[0].mean() > 0.1  # right is blue


def test_content_region_keeps_the_content() -> None:
    mask = torch.zeros(3, 32, 40)
    mask[0, :, :20] = 1.0
    mask[2, :, 20:] = 1.0
    content = _tiny(14)
    cfg = _cfg(steps=3, mask="MASK", regions=("red=1", "blue=content"))
    out = _last(_with_mask(content, [_tiny(15)], cfg, mask))[-1].image
    assert torch.allclose(out[:, :, 21:], content[:, :, 21:], atol=1e-6)
    assert not torch.allclose(out[:, :, :19], content[:, :, :19], atol=1e-3)


def _with_mask(content: torch.Tensor, styles: list[torch.Tensor], cfg: Config, mask: torch.Tensor,
               tmp: Path | None = None) -> StyleTransfer:
    import tempfile

    d = Path(tempfile.mkdtemp())
    path = d / "mask.png"
    to_pil(mask).save(path)
    return StyleTransfer(content, styles, cfg.replace(mask=str(path)))


def test_ema_output_is_the_bias_corrected_average() -> None:
    plain = _last(StyleTransfer(_tiny(16), [_tiny(17)], _cfg(steps=2)), image_every=1)
    x1, x2 = plain[0].image, plain[1].image
    ema = _last(StyleTransfer(_tiny(16), [_tiny(17)], _cfg(steps=2, ema=0.5)))[-1].image
    # avg_2 = (0.5·0.5·x1 + 0.5·x2) / (1 − 0.25) = (x1 + 2·x2) / 3
    assert torch.allclose(ema, (x1 + 2 * x2) / 3, atol=1e-4)


def test_tol_stops_early_and_says_why() -> None:
    evs = _last(StyleTransfer(_tiny(18), [_tiny(19)], _cfg(steps=50, tol=1e6, tol_window=2)))
    assert evs[-1].done and evs[-1].step == 2
    assert evs[-1].stop_reason is not None and evs[-1].stop_reason.startswith("tol")
    evs = _last(StyleTransfer(_tiny(18), [_tiny(19)], _cfg(steps=2)))
    assert evs[-1].stop_reason == "steps"


def test_scale_steps_schedule() -> None:
    cfg = _cfg(size=64, start_size=32, scale_factor=2.0, scale_steps=(3, 1))
    evs = _last(StyleTransfer(_tiny(20), [_tiny(21)], cfg))
    assert [e.scale for e in evs[:-1]] == [0, 0, 0, 1] and evs[-1].total_steps == 4
    with pytest.raises(ImpastoError, match="2 scales"):
        StyleTransfer(_tiny(20), [_tiny(21)], cfg.replace(scale_steps=(1, 2, 3)))


def test_normalize_gradients_runs_and_lowers_the_loss() -> None:
    evs = _last(StyleTransfer(_tiny(22), [_tiny(23)], _cfg(normalize_gradients=True, steps=6)))
    assert evs[-1].loss < evs[0].loss


@pytest.mark.parametrize(
    "changes",
    [{"preserve_color": "hue"}, {"style_kind": "gatys"}, {"hist_weight": -1.0}, {"ema": 1.0},
     {"tol": 0.0}, {"tol_window": 0}, {"scale_steps": (-1,)}, {"regions": ("red=1",)},
     {"mask": "m.png"}, {"mask": "m.png", "regions": ("red=content",)},
     {"mask": "m.png", "regions": ("red=1", "#ff0000=2")}],
)
def test_bad_artist_config_raises_one_line(changes: dict[str, object]) -> None:
    with pytest.raises(ImpastoError) as err:
        Config().replace(**changes)
    assert "\n" not in str(err.value)


# -- command line ----------------------------------------------------------------------------------------
@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    to_pil(_tiny(30)).save(c)
    to_pil(_tiny(31)).save(s)
    m = tmp_path / "m.png"
    mask = torch.zeros(3, 32, 40)
    mask[0, :, :20] = 1.0
    mask[2, :, 20:] = 1.0
    to_pil(mask).save(m)
    return c, s, m


def _main(argv: list[str]) -> int:
    """cli.main's exit status; argparse reports a bad flag by exiting (status 2) from inside."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.parametrize(
    "flags",
    [["--preserve-color", "hue"], ["--color-match-output=yes"], ["--style-kind", "x"],
     ["--hist-weight", "-1"], ["--scale-steps", "a,b"], ["--scale-steps", "4,4"], ["--ema", "1.5"],
     ["--ema", "x"], ["--tol", "0"], ["--tol-window", "0"], ["--normalize-gradients=1"],
     ["--region", "red"], ["--region", "red=1"], ["--mask", "MASK"], ["--mask", "MASK", "--region", "mauve=1"],
     ["--mask", "MASK", "--region", "red=3"], ["--mask", "missing.png", "--region", "red=1"],
     ["--mask", "MASK", "--region", "red=nofile.png"]],
)
def test_cli_bad_artist_flags_exit_2(
    flags: list[str], inputs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c, s, m = inputs
    flags = [str(m) if f == "MASK" else f for f in flags]
    code = _main([str(c), str(s), "-o", str(tmp_path / "o.png"), "--size", "32", "--steps", "1",
                  "--start-size", "16", "-q", *flags])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    assert not (tmp_path / "o.png").exists()


def test_cli_artist_flags_run(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    c, s, m = inputs
    out = tmp_path / "o.png"
    code = cli.main([str(c), str(s), "-o", str(out), "--size", "32", "--start-size", "none", "--steps", "2",
                     "-q", "--preserve-color", "luminance", "--style-kind", "w2", "--ema", "0.9",
                     "--tol", "0.001", "--normalize-gradients", "--mask", str(m),
                     "--region", f"red={s}", "--region", "blue=content", "--color-match-output",
                     "--style-layers", "relu1_1", "--content-layers", "relu1_1"])
    assert code == 0
    assert load_image(out).rgb.shape == (3, 26, 32)


# -- controls that were already in the core: checked here from the API and the CLI -----------------------
def test_style_scale_changes_the_style_targets() -> None:
    st1 = StyleTransfer(_tiny(40), [_tiny(41, 64, 64)], _cfg(steps=0))
    st2 = StyleTransfer(_tiny(40), [_tiny(41, 64, 64)], _cfg(steps=0, style_scale=2.0))
    g1 = st1.objective(st1.sizes[0]).slots[0].layers["relu2_1"].gram
    g2 = st2.objective(st2.sizes[0]).slots[0].layers["relu2_1"].gram
    assert g1 is not None and g2 is not None and not torch.allclose(g1, g2)


def test_style_max_zoom_caps_the_style_images_size() -> None:
    style = _tiny(41, 24, 32)  # long side 32
    free = StyleTransfer(_tiny(40, 64, 80), [style], _cfg(size=80, steps=0))
    capped = StyleTransfer(_tiny(40, 64, 80), [style], _cfg(size=80, steps=0, style_max_zoom=1.5))
    assert free.style_long_side((64, 80), style) == 80
    assert capped.style_long_side((64, 80), style) == 48  # 1.5 x its own 32
    assert capped.style_long_side((16, 20), style) == 20  # below the cap, style_scale as ever
    _, styles = capped._scale_inputs((64, 80))
    assert tuple(styles[0].shape[-2:]) == (36, 48)
    g_free = free.objective((64, 80)).slots[0].layers["relu2_1"].gram
    g_capped = capped.objective((64, 80)).slots[0].layers["relu2_1"].gram
    assert g_free is not None and g_capped is not None and not torch.allclose(g_free, g_capped)


def test_avg_pooling_differs_from_max() -> None:
    a = stylize(_tiny(42), [_tiny(43)], _cfg(steps=2, pooling="max"))
    b = stylize(_tiny(42), [_tiny(43)], _cfg(steps=2, pooling="avg"))
    assert not torch.allclose(a, b)


def test_cli_style_folder_and_blend_weights(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    c, s, _ = inputs
    folder = tmp_path / "styles"
    folder.mkdir()
    to_pil(_tiny(44)).save(folder / "a.png")
    to_pil(_tiny(45)).save(folder / "b.jpg")
    out = tmp_path / "blend.png"
    assert expand_styles([str(folder), str(s)]) == [str(folder / "a.png"), str(folder / "b.jpg"), str(s)]
    code = _main([str(c), str(folder), str(s), "-o", str(out), "--style-weights", "0.5,0.3,0.2", "--size", "32",
                  "--start-size", "none", "--steps", "1", "-q", "--style-layers", "relu1_1",
                  "--content-layers", "relu1_1"])
    assert code == 0 and out.exists()
    assert _main([str(c), str(folder), "-o", str(tmp_path / "x.png"), "--style-weights", "1,2,3", "-q"]) == 2
