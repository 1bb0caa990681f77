"""Training: the resumable loop (`resumable`), callbacks, run folders and
their run info, plots of runs, configuration (specs, presets, `--key=value`)
and `tf.distribute` set-up. Built on the layer library; the library never
imports from here."""
