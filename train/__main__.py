"""``python -m paretochain.train CONFIG.yaml [key=value ...]``: the same as ``paretochain train``."""

from paretochain.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *__import__("sys").argv[1:]]))
