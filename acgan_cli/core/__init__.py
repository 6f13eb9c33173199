"""The acgan library: data, models, training, checkpoints and sampling.

Nothing in here talks to a terminal: no typer, no rich, no printing. The training
loop reports through events (`acgan_cli.core.events`); errors are `AcganError`s
that carry a hint (`acgan_cli.core.errors`).
"""
