

class FormatError(Exception):
    """What the Docker CLI prints on stderr (exit 1) for a template it cannot use (here,
    not in formatter.py: every command that prints catches it, few need the formatter)."""
