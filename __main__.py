"""``python -m caramba`` is the same as the ``caramba`` command."""

from caramba.cli import main

if __name__ == "__main__":
    main()
