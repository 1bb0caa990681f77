"""Command-line recipes. Importing the package keeps TensorFlow's native
start-up chatter out of the terminal (`recipes._quiet`)."""

from recipes._quiet import import_tensorflow_quietly

import_tensorflow_quietly()
