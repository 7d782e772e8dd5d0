"""Generative adversarial networks (book Sections 3.2 and 4.2).

* :mod:`~aigc_course.gan.models` -- generators and discriminators (2-D MLPs, 8x8 digits).
* :mod:`~aigc_course.gan.losses` -- minimax, non-saturating, WGAN and hinge losses; WGAN-GP and R1.
* :mod:`~aigc_course.gan.train` -- the training loop (D:G ratio, TTUR, EMA, lr decay).
* :mod:`~aigc_course.gan.theory` -- the optimal discriminator and the JSD on 1-D densities (Eq. 4.2).
* :mod:`~aigc_course.gan.rejection` -- discriminator rejection sampling and its fitted critic.
* :mod:`~aigc_course.gan.pipelines` -- samplers for the shipped checkpoints.
* :mod:`~aigc_course.gan.recipes` -- the named recipes of the mode-coverage table.
"""

from aigc_course.gan.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from aigc_course.gan.models import (
    Discriminator,
    Generator,
    ImageDiscriminator,
    ImageGenerator,
    MinibatchStd,
)
from aigc_course.gan.pipelines import ConditionalGANPipeline, GANSampler
from aigc_course.gan.rejection import fit_rejection_critic, rejection_sample
from aigc_course.gan.theory import (
    gaussian_pdf,
    js_divergence,
    kl_divergence,
    optimal_discriminator,
    value_function,
)
from aigc_course.gan.train import GANConfig, GANTrainer

__all__ = [
    "LOSSES", "ConditionalGANPipeline", "Discriminator", "GANConfig", "GANSampler", "GANTrainer",
    "Generator", "ImageDiscriminator", "ImageGenerator", "MinibatchStd", "discriminator_loss",
    "fit_rejection_critic",
    "gaussian_pdf", "generator_loss", "gradient_penalty", "js_divergence", "kl_divergence",
    "optimal_discriminator", "r1_penalty", "rejection_sample", "value_function",
]
