"""Named configurations that reproduce classic write-ups of Gatys-style transfer.

Each :class:`Preset` builds a :class:`~impasto.config.Config` whose every number is the source's; the
few places where impasto cannot or will not do exactly what the source does are listed in the preset's
``notes`` (they also travel in ``Config.notes``, so ``--show-config`` and every output's
metadata carry them). Two departures are common to all (:data:`COMMON_NOTES`): impasto always applies
the preprocessing its weights need (Caffe BGR mean subtraction for the bundled VGG19), whatever the
write-up did to its own network's inputs; and its divergence guard (``Config.restart_factor``) stays
on, which changes nothing unless the loss jumps a thousandfold above its lowest value.

Python API::

    from impasto.presets import preset_config
    cfg = preset_config("tf-tutorial").replace(size=256)

The impasto default (``Config()``) is *not* the ``gatys`` preset: see :data:`DEFAULT_CHOICE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impasto.config import Config
from impasto.errors import ImpastoError

COMMON_NOTES = (
    "impasto always applies the preprocessing its weights need (the bundled VGG19 is Caffe's: BGR, 0-255, "
    "minus the ImageNet mean), whatever the write-up fed its own network",
    "impasto's divergence guard stays on (restart_factor 1000): if the loss jumps above 1000x its lowest value "
    "the run goes back to its best image and restarts the optimiser, where the write-up would go on from "
    "the jump (it fired for pytorch-stylecnn on an H100; --restart-factor none turns it off)",
)

FIVE_RELU = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""conv1_1 … conv5_1 as Caffe, MatConvNet-graph and the paper mean them: after the ReLU."""
FIVE_KERAS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
"""The same layers in Keras spelling (a Keras Conv2D includes its ReLU, so these are post-ReLU too)."""
TORCH_TUTORIAL_STYLE = ("conv_1", "conv_2", "conv_3", "conv_4", "conv_5")
"""PyTorch tutorial names, counting convolutions: conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, pre-ReLU."""

PYTORCH_STYLECNN_CONTENT_W = 1.0
PYTORCH_STYLECNN_STYLE_W = 1000.0
"""The tutorial's weights, applied *inside* the MSE: MSE(w·x, w·y) = w²·MSE(x, y), so the Config holds w²."""


@dataclass(frozen=True)
class Stated:
    """One thing a write-up states, with the line that states it.

    ``quote`` is copied from the write-up (``../shared/seeds``; whitespace runs count as one space) and
    contains ``literal``; ``field`` is the Config field (or ``cli:NAME`` for a front-end default) that
    holds it, and ``value`` what the preset sets there. ``how`` says how the literal becomes the value
    when they differ (``squared``: the write-up's weight sits inside an MSE). The preset tests check all
    four against the seed text, so a wrong number cannot hide behind a copy of the code's own belief.
    """

    field: str
    value: Any
    literal: str
    quote: str
    how: str = ""

    def note(self) -> str:
        shown = _shown(self.value)
        how = f" ({self.how})" if self.how else ""
        return f"the write-up states: «{self.quote}» -> {self.field} = {shown}{how}"


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    """One line for ``impasto presets``."""
    factory: Callable[[], Config]
    """Builds the source's configuration (without the preset's name and notes)."""
    seed: str
    """The write-up's file in ``../shared/seeds`` (see its README)."""
    stated: tuple[Stated, ...]
    """Every number (and name) the write-up states, with its line."""
    readings: tuple[str, ...]
    """Where the write-up is silent or incomplete: each starts with "reading:" and says where it comes from."""
    departures: tuple[str, ...] = ()
    """Where impasto does not do what the write-up does, and why."""
    cli_defaults: dict[str, int] = field(default_factory=dict)
    """Front-end behaviour the source has (``save_every``, ``print_every``), used unless flags say otherwise."""
    needs_arch: str | None = None
    """``"vgg16"``: the source's network is not the bundled VGG19; the user must supply weights or accept VGG19."""

    @property
    def notes(self) -> tuple[str, ...]:
        """What travels in ``Config.notes``: the stated lines, then the readings, then the departures."""
        return (*(s.note() for s in self.stated), *self.readings, *self.departures)


def _coursera() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="avg",
        content_layers=("relu4_2",),
        style_layers=FIVE_RELU,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="coursera",
        gram_norm="none",
        style_loss="paper",
        tv_weight=0.0,
        balance="none",
        content_weight=10.0,
        style_weight=40.0,
        optimizer="adam",
        lr=2.0,
        adam_betas=(0.9, 0.999),
        adam_eps=1e-8,
        pixel_scale=255.0,
        clamp=False,
        init="blend",
        noise="uniform",
        noise_scale=20.0 / 255.0,
        noise_mean=None,
        noise_ratio=0.6,
        steps=200,
        size=400,
        start_size=None,
        seed=0,
    )



def _pytorch_stylecnn() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="max",
        content_layers=("conv_4",),
        style_layers=TORCH_TUTORIAL_STYLE,
        style_layer_weights=None,
        content_loss="mse",
        gram_norm="abcd",
        style_loss="mse",
        content_weight=PYTORCH_STYLECNN_CONTENT_W**2,
        style_weight=PYTORCH_STYLECNN_STYLE_W**2,
        tv_weight=0.0,
        balance="none",
        optimizer="lbfgs",
        lr=1.0,
        lbfgs_history=100,
        lbfgs_max_iter=20,
        lbfgs_line_search=False,
        pixel_scale=1.0,
        # The write-up never clamps its parameter: it clamps a clone inside the closure, so the loss sees
        # clamped pixels and the gradient passes straight through. clamp_in_loss does exactly that; the
        # parameter itself is clamped neither after a step (clamp) nor before an evaluation.
        clamp=False,
        clamp_before_eval=False,
        clamp_in_loss=True,
        init="content",
        steps=31,
        size=256,
        start_size=None,
        seed=0,
    )


def _tf_tutorial() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="max",
        content_layers=("block5_conv2",),
        style_layers=FIVE_KERAS,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="mse",
        gram_norm="hw",
        style_loss="mse",
        content_weight=1e4,
        style_weight=1e-2,
        tv_weight=30.0,
        balance="none",
        tv_loss="l1",
        optimizer="adam",
        lr=0.02,
        adam_betas=(0.99, 0.999),
        adam_eps=0.1,
        pixel_scale=1.0,
        clamp=True,
        init="content",
        steps=1000,
        size=512,
        start_size=None,
        seed=0,
    )


KERAS_WHITE_LR = 2.0
"""Adam's learning rate for keras-white, in the 0-255 preprocessed units its variable lives in (a reading)."""


def _keras_white() -> Config:
    return Config(
        lbfgs_max_step=None,
        weights=None,
        pooling="max",
        content_layers=("block4_conv2",),
        style_layers=FIVE_KERAS,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="sse",
        gram_norm="none",
        style_loss="keras",
        content_weight=1e-2,
        style_weight=1.0,
        tv_weight=0.0,
        balance="none",
        optimizer="adam",
        lr=KERAS_WHITE_LR,
        adam_betas=(0.9, 0.999),
        adam_eps=1e-7,
        pixel_scale=255.0,
        clamp=False,
        init="preprocessed-ones",
        steps=1000,
        size=400,
        start_size=None,
        seed=0,
    )


def _gatys() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="avg",
        content_layers=("relu4_2",),
        style_layers=FIVE_RELU,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="half_sse",
        gram_norm="none",
        style_loss="paper",
        content_weight=1.0,
        style_weight=1e3,
        tv_weight=0.0,
        balance="none",
        optimizer="lbfgs",
        lr=1.0,
        lbfgs_max_iter=1,
        pixel_scale=255.0,
        clamp=False,
        init="noise",
        noise="gaussian",
        noise_scale=0.1,
        noise_mean=None,
        steps=500,
        size=512,
        start_size=None,
        seed=0,
    )


_COURSERA_TOTAL = "J = total_cost(J_content, J_style, alpha = 10, beta = 40)"
_TORCH_STYLE = "self.style_layers = ['conv_1', 'conv_2', 'conv_3', 'conv_4', 'conv_5']"
_TF_ADAM = "opt = tf.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)"
_KERAS_LAYERS = ("The paper uses the conv4_2 layer for the content loss, and conv1_1, conv2_1, conv3_1, conv4_1 "
                 "and conv5_1 for style loss.")
_KERAS_STYLE = ("return tf.reduce_sum(tf.square(style_gram_matrix - white_image_gram_matrix)) / "
                "(36 * (size**2))")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "coursera",
            "deeplearning.ai assignment: VGG19 avg-pool, conv4_2 + 5 style layers ×0.2, α=10 β=40, Adam lr 2, "
            "200 its from 60% noise",
            _coursera,
            "000_e6158d79043fd910.txt",
            (
                Stated("content_weight", 10.0, "10", _COURSERA_TOTAL),
                Stated("style_weight", 40.0, "40", _COURSERA_TOTAL),
                Stated("optimizer", "adam", "AdamOptimizer", "optimizer = tf.train.AdamOptimizer(2.0)"),
                Stated("lr", 2.0, "2.0", "optimizer = tf.train.AdamOptimizer(2.0)"),
                Stated("steps", 200, "200", "def model_nn(sess, input_image, num_iterations = 200):"),
                Stated("content_layers", ("relu4_2",), "conv4_2", "out = model['conv4_2']",
                       "the assignment's conv4_2 is its conv+ReLU graph node, so after the ReLU"),
                Stated("content_loss", "coursera", "(4 * n_H * n_W * n_C)",
                       "J_content = tf.reduce_sum((a_C_unrolled - a_G_unrolled)**2) / (4 * n_H * n_W * n_C)"),
                Stated("style_loss", "paper", "(4 * n_C**2 * (n_W * n_H)**2)",
                       "J_style_layer = tf.reduce_sum((GS - GG)**2) / (4 * n_C**2 * (n_W * n_H)**2)",
                       "with gram_norm none: the raw Gram GA = A·Aᵀ"),
                Stated("gram_norm", "none", "tf.matmul(A, tf.transpose(A))",
                       "GA = tf.matmul(A, tf.transpose(A)) # '*' is elementwise mul in numpy"),
                Stated("cli:save_every", 20, "20", "if i%20 == 0:"),
                Stated("cli:print_every", 20, "20", "if i%20 == 0:"),
                Stated("weights", None, "imagenet-vgg-verydeep-19.mat",
                       'model = load_vgg_model("pretrained-model/imagenet-vgg-verydeep-19.mat")',
                       "VGG19: the bundled Caffe VGG19 is the same network"),
            ),
            (
                "reading: style layers conv1_1 … conv5_1 with 0.2 each: the write-up uses STYLE_LAYERS but never "
                "lists it; these are the original deeplearning.ai assignment's STYLE_LAYERS, read post-ReLU "
                "like conv4_2",
                "reading: average pooling: the write-up does not show load_vgg_model; the original assignment's "
                "builds its graph with average pooling",
                "reading: noise ratio 0.6 and noise U(−20, 20) in mean-subtracted 0-255 units (the ImageNet mean "
                "colour ± 20/255 in pixels), blended 0.6·noise + 0.4·content: the write-up calls "
                "generate_noise_image without showing it; these are the original assignment's "
                "generate_noise_image and CONFIG.NOISE_RATIO",
                "reading: size 400: the write-up names no size; the original assignment's CONFIG is 400×300, "
                "impasto makes the long side 400 keeping the aspect (and rescales the un-normalised style Gram "
                "to the output's size if the painting's shape differs)",
                "reading: Adam β1 0.9, β2 0.999, ε 1e-8: the write-up names only the learning rate; these are "
                "TF1 AdamOptimizer's defaults (TF1 adds ε to the un-bias-corrected √v; at 1e-8 negligible)",
                "reading: no total-variation term and no clipping during optimisation: the write-up's cost is "
                "alpha·J_content + beta·J_style and its loop never clips",
                "reading: the MatConvNet VGG19 takes RGB minus the mean; the bundled Caffe VGG19 is the same "
                "network in BGR order",
            ),
            cli_defaults={"save_every": 20, "print_every": 20},
        ),
        Preset(
            "pytorch-stylecnn",
            "PyTorch StyleCNN: VGG19 conv_4 / conv_1..5 (pre-ReLU), Gram/abcd, weights 1 and 1000 inside "
            "the MSE, L-BFGS 31×20 from an image (the content photo unless --init FILE) at 256 px",
            _pytorch_stylecnn,
            "001_e9dec17edf57c636.txt",
            (
                Stated("size", 256, "256", "imsize = 256"),
                Stated("content_layers", ("conv_4",), "conv_4", "self.content_layers = ['conv_4']",
                       "conv_N counts convolutions: conv_4 = conv2_2, before its ReLU"),
                Stated("style_layers", TORCH_TUTORIAL_STYLE, "conv_5", _TORCH_STYLE,
                       "conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, before their ReLUs"),
                Stated("content_weight", PYTORCH_STYLECNN_CONTENT_W**2, "1", "self.content_weight = 1",
                       "squared: applied inside the MSE, MSE(w·x, w·y) = w²·MSE(x, y)"),
                Stated("style_weight", PYTORCH_STYLECNN_STYLE_W**2, "1000", "self.style_weight = 1000",
                       "squared: applied inside the MSE, MSE(w·x, w·y) = w²·MSE(x, y)"),
                Stated("gram_norm", "abcd", "a * b * c * d", "return G.div(a * b * c * d)"),
                Stated("style_loss", "mse", "nn.MSELoss()", "self.loss = nn.MSELoss()"),
                Stated("content_loss", "mse", "nn.MSELoss()", "self.loss = nn.MSELoss()"),
                Stated("optimizer", "lbfgs", "optim.LBFGS", "self.optimizer = optim.LBFGS([self.pastiche])",
                       "torch's defaults: lr 1, max_iter 20, history_size 100, no line search"),
                Stated("lbfgs_max_iter", 20, "optim.LBFGS([self.pastiche])",
                       "self.optimizer = optim.LBFGS([self.pastiche])", "torch's default max_iter"),
                Stated("steps", 31, "31", "num_epochs = 31"),
                Stated("init", "content", "image_loader(\"patiche.jpg\")",
                       'pastiche = image_loader("patiche.jpg").type(dtype)',
                       "an image file, --init FILE; without one, the content photo (see the reading)"),
                Stated("pooling", "max", "models.vgg19(pretrained=True)",
                       "self.loss_network = models.vgg19(pretrained=True)", "torchvision's VGG19 max-pools"),
                Stated("cli:save_every", 10, "10", "if i % 10 == 0:"),
            ),
            (
                "reading: the start image is the file patiche.jpg (the torch.randn tensor the write-up makes "
                "is never used); with no --init FILE the content photo is the natural stand-in",
                "reading: pixels in 0-1 (pixel_scale 1): the write-up's loader transforms are missing from its "
                "text; torchvision's ToTensor gives 0-1; no ImageNet mean/std normalisation is shown, so "
                "none is claimed",
                "reading: the write-up loads both images at imsize and views them as 256×256; impasto makes the "
                "long side 256 keeping the aspect",
                "reading: one optimizer.step(closure) per epoch, so 31 steps of up to 20 inner iterations each "
                "(the write-up's loop body is read as calling step once)",
                "reading: impasto sets torch L-BFGS's tolerances to 0 (torch's defaults are tolerance_grad 1e-7, "
                "tolerance_change 1e-9) so all 20 inner iterations run; the write-up keeps torch's defaults, "
                "which may end an epoch's inner loop early",
            ),
            (
                "departure: the write-up clamps a clone inside the closure («pastiche = self.pastiche.clone()», "
                "«pastiche.data.clamp_(0, 1)»): the loss sees clamped pixels, the gradient passes straight "
                "through and the optimised parameter is never clamped; impasto does the same (clamp_in_loss)",
            ),
            cli_defaults={"save_every": 10},
        ),
        Preset(
            "tf-tutorial",
            "TensorFlow tutorial: VGG19 block5_conv2 / block1..5_conv1, Gram/HW, weights 1e4 and 1e-2, TV 30, "
            "Adam 0.02 (β1 0.99, ε 0.1) 1000 steps",
            _tf_tutorial,
            "002_fd8d166bb0a51dd2.txt",
            (
                Stated("content_layers", ("block5_conv2",), "block5_conv2", "content_layers = ['block5_conv2']",
                       "a Keras Conv2D includes its ReLU: relu5_2"),
                Stated("optimizer", "adam", "Adam", _TF_ADAM),
                Stated("lr", 0.02, "0.02", _TF_ADAM),
                Stated("adam_betas", (0.99, 0.999), "0.99", _TF_ADAM, "β1; β2 is a reading"),
                Stated("adam_eps", 0.1, "1e-1", _TF_ADAM),
                Stated("gram_norm", "hw", "num_locations",
                       "return result/(num_locations)"),
                Stated("style_loss", "mse", "tf.reduce_mean",
                       "style_loss = tf.add_n([tf.reduce_mean((style_outputs[name]-style_targets[name])**2)"),
                Stated("content_loss", "mse", "tf.reduce_mean",
                       "content_loss = tf.add_n([tf.reduce_mean((content_outputs[name]-content_targets[name])**2)"),
                Stated("tv_loss", "l1", "tf.image.total_variation",
                       "loss += total_variation_weight*tf.image.total_variation(image)",
                       "sum of absolute differences"),
                Stated("steps", 1000, "1000", "Do 1000 iteration and save every 200th iteration image",
                       "epochs = 10 × steps_per_epoch = 100"),
                Stated("init", "content", "content_image", "image = tf.Variable(content_image)"),
                Stated("pixel_scale", 1.0, "[0,1]", '"Expects float input in [0,1]"'),
                Stated("cli:save_every", 100, "100", "steps_per_epoch = 100",
                       "the code writes one image per epoch of 100 steps (the prose says every 200th)"),
            ),
            (
                "reading: style layers block1_conv1 … block5_conv1: the write-up's list is cut after "
                "'block1_conv1'; the rest is the TensorFlow tutorial's style_layers, per-layer weight 1/5 "
                "from «style_loss *= style_weight / num_style_layers»",
                "reading: style_weight 1e-2 and content_weight 1e4: the write-up uses style_weight and "
                "content_weight without setting them; these are the TensorFlow tutorial's values",
                "reading: total_variation_weight 30: used but not set in the write-up; the TensorFlow "
                "tutorial's value",
                "reading: size 512: the write-up's load_img is not shown; the TensorFlow tutorial's load_img "
                "scales the long side to max_dim = 512",
                "reading: pixels clipped to [0, 1] after every step: the write-up defines clip_0_1 but its "
                "train_step does not call it; the TensorFlow tutorial's train_step does "
                "(image.assign(clip_0_1(image)))",
                "reading: Adam β2 0.999: the write-up names β1 only; Keras' default",
                "reading: Keras' Adam adds ε to the un-bias-corrected √v where torch adds it to the corrected "
                "one, so impasto's ε = 0.1 damps the first steps a little less",
            ),
            cli_defaults={"save_every": 100},
        ),
        Preset(
            "keras-white",
            "Keras 'white image' (VGG16): conv4_2 / conv1..5_1 ×1/5, Σ(G−A)²/(36·(rows·cols)²), content/style "
            "1e-2, Adam (a reading) from ones in the preprocessed space",
            _keras_white,
            "003_47af5cb76c7fcfe8.txt",
            (
                Stated("content_layers", ("block4_conv2",), "conv4_2", _KERAS_LAYERS,
                       "Keras block4_conv2, which includes the ReLU"),
                Stated("style_layers", FIVE_KERAS, "conv5_1", _KERAS_LAYERS),
                Stated("style_layer_weights", (0.2, 0.2, 0.2, 0.2, 0.2), "(1 / len(style_fowards))",
                       "s_loss += (1 / len(style_fowards)) * current_layer_loss", "five layers: 1/5 each"),
                Stated("style_loss", "keras", "36", _KERAS_STYLE,
                       "36 = 4·3² (channels hard-coded to 3); size = rows·cols at every layer"),
                Stated("gram_norm", "none", "K.dot(features,K.transpose(features))",
                       "gram = K.dot(features,K.transpose(features))"),
                Stated("content_loss", "sse", "tf.reduce_sum",
                       "return tf.reduce_sum(tf.square(white_pred - base_pred))"),
                Stated("content_weight", 1e-2, "1×10^{-2}",
                       "I found a ratio of 1×10^{-2} to compose reasonable results.",
                       "α/β = 1e-2 with style_weight 1"),
                Stated("init", "preprocessed-ones", "tf.ones",
                       "self.white_image = tf.Variable(tf.ones(shape = (1,rows,cols,3)))",
                       "ones in the preprocessed (BGR, mean-subtracted) space: the ImageNet mean colour plus "
                       "1/255, a flat grey-brown"),
                Stated("pixel_scale", 255.0, "vgg16.preprocess_input",
                       "processed_image = tf.keras.applications.vgg16.preprocess_input(img_to_tensor)",
                       "the variable lives in Caffe's 0-255 space"),
                Stated("weights", None, "vgg16", "We load the pretrained model (vgg16)",
                       "needs VGG16 weights from the user (--weights FILE); --allow-vgg19 runs it on the "
                       "bundled VGG19, which is not the write-up's network"),
            ),
            (
                "reading: optimiser Adam, β1 0.9, β2 0.999, ε 1e-7 (Keras' defaults): the write-up passes an "
                "unnamed Keras optimiser to compile() and steps it with apply_gradients, one update per "
                "training step; Adam is the usual choice for such a loop and the only Keras optimiser "
                "whose defaults are scale-free enough for a 0-255 variable",
                f"reading: learning rate {KERAS_WHITE_LR:g} in the variable's 0-255 units: Keras' default 0.001 "
                "would move a pixel less than 1/255 in 1000 updates, leaving the flat start the write-up's "
                "'after a few epochs' pictures show changed; 2.0 is the coursera write-up's Adam rate in the "
                "same mean-subtracted 0-255 space",
                "reading: 1000 steps: the write-up names no epoch count",
                "reading: size 400: rows and cols are parameters the write-up never sets; impasto makes the "
                "long side 400",
                "reading: no total-variation term and no clipping during optimisation: the loss is "
                "content_weight·c_loss + style_weight·s_loss, and only deprocess_image clips (when saving)",
            ),
            needs_arch="vgg16",
        ),
        Preset(
            "gatys",
            "Gatys et al. 2016: VGG19 avg-pool, conv4_2 / conv1..5_1 ×1/5, E_l = Σ(G−A)²/(4N²M²), α/β 1e-3, "
            "L-BFGS from white noise",
            _gatys,
            "",
            (),
            (
                "reading: conv4_2 etc. are Caffe layers, whose ReLU is in place, so they are post-ReLU: "
                "relu4_2 …",
                "reading: content loss ½Σ(F − P)² (eq. 1), content_weight 1 and style_weight 1e3 give "
                "α/β = 1e-3",
                "reading: the paper names no step count or image size; impasto uses 500 single-iteration "
                "L-BFGS steps (no line search) at 512 px, one scale",
                "reading: white noise is Gaussian with std 0.1 around the ImageNet mean colour",
                "reading: pixels are not clipped during optimisation, only when saved (the paper says nothing "
                "of it)",
            ),
        ),
    )
}

DEFAULT_CHOICE = (
    "impasto's default stays its own, not the gatys preset: with the paper's un-normalised losses from white "
    "noise, 60 L-BFGS steps at 256 px still left a noisy, psychedelic image (measured before issue 11 by a script "
    "since removed, so not reproducible from this tree), while the default starts from the photo recoloured to "
    "the painting's palette (init palette), so every step is already a recognisable image, and its relative "
    "balance keeps the content/style balance when the image size or the painting's contrast changes (the "
    "paper's 1/(4N²M²) with raw content sums does not); no equal-time side-by-side was measured"
)


def names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ImpastoError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def preset_config(name: str, *, weights: str | None = None, allow_vgg19: bool = False) -> Config:
    """The configuration of preset ``name``, with its name in ``preset`` and its departures in ``notes``.

    For a preset whose source used another network (``keras-white``: VGG16) give ``weights``, or pass
    ``allow_vgg19=True`` to accept the bundled VGG19 in its place; otherwise this raises ImpastoError.
    """
    p = get_preset(name)
    cfg = p.factory()
    notes = [*p.notes, *COMMON_NOTES]
    changes: dict[str, Any] = {}
    if weights is not None:
        changes["weights"] = weights
    cfg = cfg.replace(preset=p.name, notes=tuple(notes), **changes)
    check_weights(cfg, allow_vgg19=allow_vgg19)
    return cfg


def check_weights(cfg: Config, *, allow_vgg19: bool = False) -> None:
    """Refuse to run a VGG16 preset on the bundled VGG19 unless the user accepted the substitution."""
    name = cfg.preset
    if name is None or name not in PRESETS:
        return
    p = PRESETS[name]
    if p.needs_arch is not None and cfg.weights is None and not allow_vgg19:
        raise ImpastoError(
            f"preset {name} uses {p.needs_arch.upper()}, which impasto does not bundle: pass its weights with "
            f"--weights FILE, or add --allow-vgg19 to run it on the bundled VGG19 instead"
        )


def mark_vgg19_substitute(cfg: Config) -> Config:
    """Record in ``notes`` that a VGG16 preset ran on the bundled VGG19 (so the output's metadata says so)."""
    name = cfg.preset
    if name is not None and name in PRESETS and PRESETS[name].needs_arch and cfg.weights is None:
        note = f"bundled VGG19 in place of {PRESETS[name].needs_arch}"
        return cfg.replace(notes=(*cfg.notes, note))
    return cfg


__all__ = [
    "DEFAULT_CHOICE", "PRESETS", "Preset", "check_weights", "get_preset", "mark_vgg19_substitute",
    "names", "preset_config",
]
