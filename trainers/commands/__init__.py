"""The trainers' CLI commands: arguments in, options out, one library call."""
