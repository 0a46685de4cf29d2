"""The engine's CLI commands: arguments in, options out, one library call."""
