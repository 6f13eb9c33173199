"""acgan: train, sample, evaluate and export class-conditional GANs from the command line."""

__version__ = "0.1.0"
