"""The dataset tools' CLI commands: arguments in, options out, one library call."""
